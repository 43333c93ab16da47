use super::*;

#[test]
fn long_lines_are_cut_with_a_mark_and_short_ones_padded() {
    assert_eq!(
        cut(&chars("abcdef"), 4),
        vec![Cell::Char('a'), Cell::Char('b'), Cell::Char('c'), Cell::Cut]
    );
    assert_eq!(cut(&chars("abc"), 4), chars("abc"));
    assert_eq!(spread(chars("ab"), chars("cd"), 6), chars("ab  cd"));
    assert_eq!(spread(chars("abc"), chars("def"), 5), chars("abc def"));
}

#[test]
fn the_least_important_lines_go_first() {
    let view = View {
        title: "T",
        note: String::new(),
        body: Body::System(super::super::view::SystemFacts {
            address: "192.168.1.23".into(),
            second_address: Some("fd00::23".into()),
            hostname: "h".into(),
            disk: None,
            uptime: "1d".into(),
            temperature: String::new(),
        }),
    };
    let narrow = layout(&view, TextSize::C16x2).lines();
    assert_eq!(narrow, vec!["192.168.1.23    ", "Disk unknown    "]);
    let wide = layout(&view, TextSize::C20x4).lines();
    assert_eq!(wide[1], "IP 192.168.1.23     ");
    assert_eq!(wide[2], "Disk unknown        ");
    assert_eq!(wide[3], "up 1d               ");
}

#[test]
fn lcd_codes_follow_the_a00_rom() {
    assert_eq!(Cell::Char('A').lcd_code(), b'A');
    assert_eq!(Cell::Char('°').lcd_code(), 0xDF);
    assert_eq!(Cell::Char('é').lcd_code(), b'?');
    assert_eq!(Cell::Char('~').lcd_code(), b'-');
    assert_eq!(Cell::Cut.lcd_code(), 0x7E);
    for cell in [
        Cell::Char('A'),
        Cell::Char('°'),
        Cell::Cut,
        Cell::Block,
        Cell::Glyph(Glyph::Warning),
    ] {
        assert_eq!(Cell::from_lcd_code(cell.lcd_code()), cell);
    }
    let codes: Vec<u8> = Glyph::ALL.iter().map(|g| g.code()).collect();
    assert_eq!(codes, (0..8).collect::<Vec<u8>>());
    for glyph in Glyph::ALL {
        assert!(
            glyph.pattern().iter().all(|row| row & !0x1F == 0),
            "{glyph:?}"
        );
    }
}
