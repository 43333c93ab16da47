//! The HD44780 character LCD on a PCF8574 backpack against a mock I2C bus
//! (embedded-hal-mock): the init sequence and a page write byte by byte, only changed rows
//! sent again, the backlight as the light, retry after the backpack is gone (hot-plug), and
//! the I2C bus scan of `letterbox panel --probe`.
//!
//! The expected bytes are spelled out from the backpack's wiring (P0 RS, P1 RW, P2 E,
//! P3 backlight, P4–P7 D4–D7) and the HD44780U datasheet, not computed by the driver's code.

use std::time::{Duration, Instant};

use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction};
use letterbox::board::{DisplaySize, PanelFacts, PanelKind, Rotation};
use letterbox::panel::lcd::{self, Lcd};
use letterbox::panel::text::{Cell, Glyph};
use letterbox::panel::{Light, Page, Screen, TextScreen, TextSize, layout, probe, view};
use letterbox::status::{ListenerStatus, Status};

const ADDRESS: u8 = 0x27;

/// The four backpack writes that carry one HD44780 byte with the backlight on: the high
/// nibble with E (0x04) high then low, the low nibble the same; RS (0x01) for data.
fn carried(rs: bool, byte: u8) -> Vec<u8> {
    let flags = 0x08 | u8::from(rs);
    let high = (byte & 0xF0) | flags;
    let low = (byte << 4) | flags;
    vec![high | 0x04, high, low | 0x04, low]
}

fn init_sequence() -> Vec<Transaction> {
    let mut cgram = vec![0x4C, 0x48, 0x0C, 0x08]; // set CGRAM address 0
    for glyph in Glyph::ALL {
        for row in glyph.pattern() {
            cgram.extend(carried(true, row));
        }
    }
    assert_eq!(cgram.len(), 4 + 8 * 8 * 4, "eight characters of eight rows");
    vec![
        // Function set 8-bit, three times, as single nibbles (E high, then low).
        Transaction::write(ADDRESS, vec![0x3C, 0x38]),
        Transaction::write(ADDRESS, vec![0x3C, 0x38]),
        Transaction::write(ADDRESS, vec![0x3C, 0x38]),
        // Function set 4-bit, still one nibble.
        Transaction::write(ADDRESS, vec![0x2C, 0x28]),
        // 0x28: 4-bit, two lines, 5×8 dots.
        Transaction::write(ADDRESS, vec![0x2C, 0x28, 0x8C, 0x88]),
        // 0x08: display off.
        Transaction::write(ADDRESS, vec![0x0C, 0x08, 0x8C, 0x88]),
        // 0x01: clear.
        Transaction::write(ADDRESS, vec![0x0C, 0x08, 0x1C, 0x18]),
        // 0x06: entry mode, increment, no shift.
        Transaction::write(ADDRESS, vec![0x0C, 0x08, 0x6C, 0x68]),
        Transaction::write(ADDRESS, cgram),
        // 0x0C: display on, no cursor, no blink.
        Transaction::write(ADDRESS, vec![0x0C, 0x08, 0xCC, 0xC8]),
    ]
}

/// One row: set the DDRAM address, then the characters' codes, in one write.
fn row_write(ddram: u8, codes: &[u8]) -> Transaction {
    let mut bytes = carried(false, 0x80 | ddram);
    for code in codes {
        bytes.extend(carried(true, *code));
    }
    Transaction::write(ADDRESS, bytes)
}

fn cells(text: &str) -> Vec<Cell> {
    text.chars().map(Cell::Char).collect()
}

fn listener(service: &str, address: &str, up: bool) -> ListenerStatus {
    ListenerStatus {
        service: service.into(),
        address: address.into(),
        up,
        error: (!up).then(|| "Address in use (os error 98)".to_string()),
    }
}

fn ports_status() -> Status {
    Status {
        listeners: vec![
            listener("smtp", "0.0.0.0:25", true),
            listener("submission", "0.0.0.0:587", true),
            listener("imap", "0.0.0.0:143", true),
            listener("pop3", "0.0.0.0:110", true),
            listener("web", "0.0.0.0:80", false),
        ],
        ..Status::default()
    }
}

#[test]
fn init_then_a_page_row_by_row_then_only_what_changed() {
    let ports = layout(
        &view(&Screen::Page(Page::Ports), &ports_status(), 0),
        TextSize::C16x2,
    );
    assert_eq!(ports.lines(), vec!["●SMTP ●SUB ●IMAP", "●POP ☒WEB in use"]);
    // Glyph codes 0 (up) and 2 (failed) are the CGRAM characters written at init.
    let row0 = b"\x00SMTP \x00SUB \x00IMAP";
    let row1 = b"\x00POP \x02WEB in use";
    // Spelled out once: the first character of row 0, code 0x00 as data with the light on.
    assert_eq!(carried(true, 0x00), vec![0x0D, 0x09, 0x0D, 0x09]);
    assert_eq!(carried(false, 0xC0), vec![0xCC, 0xC8, 0x0C, 0x08]);

    let mut mail = ports.clone();
    mail.set_row(1, &cells("mail"));

    let mut expected = init_sequence();
    expected.push(row_write(0x00, row0));
    expected.push(row_write(0x40, row1));
    // The second screen differs in row 1 only: "mail" over the first four cells.
    let mut changed: Vec<u8> = row1.to_vec();
    changed[..4].copy_from_slice(b"mail");
    expected.push(row_write(0x40, &changed));
    // Backlight off, then on: a single byte with P3 clear, then set.
    expected.push(Transaction::write(ADDRESS, vec![0x00]));
    expected.push(Transaction::write(ADDRESS, vec![0x08]));
    let mut bus = Mock::new(&expected);

    let mut lcd = Lcd::new(bus.clone(), NoopDelay::new(), ADDRESS, TextSize::C16x2);
    lcd.init().expect("init");
    lcd.show(&ports).expect("ports");
    lcd.show(&ports)
        .expect("the same again: nothing on the bus");
    lcd.show(&mail).expect("one row changed");
    lcd.set_backlight(false).expect("off");
    lcd.set_backlight(true).expect("on");
    bus.done();
}

#[test]
fn a_20x4_writes_its_rows_at_the_folded_addresses() {
    let mut screen = TextScreen::blank(TextSize::C20x4);
    for row in 0..4 {
        screen.set_row(row, &cells(&format!("row {row}")));
    }
    let mut expected = init_sequence();
    for (row, ddram) in [0x00, 0x40, 0x14, 0x54].into_iter().enumerate() {
        let mut codes = format!("row {row}").into_bytes();
        codes.resize(20, b' ');
        expected.push(row_write(ddram, &codes));
    }
    let mut bus = Mock::new(&expected);
    let mut lcd = Lcd::new(bus.clone(), NoopDelay::new(), ADDRESS, TextSize::C20x4);
    lcd.init().expect("init");
    lcd.show(&screen).expect("four rows");
    bus.done();
}

#[test]
fn a_missing_backpack_is_retried_with_backoff_and_comes_back() {
    let facts = PanelFacts {
        i2c: "/dev/i2c-1".into(),
        kind: PanelKind::Hd44780,
        address: ADDRESS,
        size: DisplaySize::Chars(TextSize::C16x2),
        rotation: Rotation::Normal,
    };
    let mut screen = TextScreen::blank(TextSize::C16x2);
    screen.set_row(0, &cells("A"));
    let mut first_row = vec![b' '; 16];
    first_row[0] = b'A';
    let nack = ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address);
    // 1. Nobody answers the first nibble of the init.
    let mut expected = vec![Transaction::write(ADDRESS, vec![0x3C, 0x38]).with_error(nack)];
    // 2. After the backoff the backpack is there: init, then the one row that is not blank.
    expected.extend(init_sequence());
    expected.push(row_write(0x00, &first_row));
    // 3. Five seconds later the probe (the outputs as they are) is not acknowledged.
    expected.push(Transaction::write(ADDRESS, vec![0x08]).with_error(nack));
    // 4. Plugged in again: a fresh init and the screen.
    expected.extend(init_sequence());
    expected.push(row_write(0x00, &first_row));
    let mut bus = Mock::new(&expected);

    let opens = std::cell::Cell::new(0);
    let handle = bus.clone();
    let open = || {
        opens.set(opens.get() + 1);
        Ok(handle.clone())
    };
    let mut driver = lcd::driver(open, NoopDelay::new, "mock".into(), &facts);
    let start = Instant::now();
    driver.show(&screen, Light::Full, start);
    assert!(!driver.is_connected());
    driver.poll(start + Duration::from_millis(500)); // backoff: not yet
    assert_eq!(opens.get(), 1);
    driver.poll(start + Duration::from_secs(1));
    assert!(driver.is_connected());
    driver.poll(start + Duration::from_secs(3)); // nothing new to send
    driver.poll(start + Duration::from_secs(9));
    assert!(!driver.is_connected(), "the failed probe drops the panel");
    driver.poll(start + Duration::from_secs(10));
    assert!(driver.is_connected());
    assert_eq!(opens.get(), 3);
    drop(driver);
    bus.done();
}

#[test]
fn dim_keeps_the_backlight_and_off_turns_it_off_keeping_the_text() {
    let facts = PanelFacts {
        i2c: "/dev/i2c-1".into(),
        kind: PanelKind::Hd44780,
        address: ADDRESS,
        size: DisplaySize::Chars(TextSize::C16x2),
        rotation: Rotation::Normal,
    };
    let screen = TextScreen::blank(TextSize::C16x2);
    let mut expected = init_sequence();
    // Dim: nothing to do. Off: P3 clear. Full again: P3 set; the blank text was never sent.
    expected.push(Transaction::write(ADDRESS, vec![0x00]));
    expected.push(Transaction::write(ADDRESS, vec![0x08]));
    let mut bus = Mock::new(&expected);
    let handle = bus.clone();
    let mut driver = lcd::driver(
        move || Ok(handle.clone()),
        NoopDelay::new,
        "mock".into(),
        &facts,
    );
    let start = Instant::now();
    driver.show(&screen, Light::Full, start);
    driver.show(&screen, Light::Dim, start);
    driver.show(&screen, Light::Off, start);
    driver.show(&screen, Light::Full, start);
    drop(driver);
    bus.done();
}

#[test]
fn the_probe_reads_every_address_and_names_what_answers() {
    let nack = ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address);
    let present = [0x27, 0x3C];
    let expected: Vec<Transaction> = (probe::FIRST_ADDRESS..=probe::LAST_ADDRESS)
        .map(|address| {
            if present.contains(&address) {
                Transaction::read(address, vec![0xFF])
            } else {
                Transaction::read(address, vec![0x00]).with_error(nack)
            }
        })
        .collect();
    assert_eq!(expected.len(), 112);
    let mut bus = Mock::new(&expected);
    let scan = probe::scan(&mut bus);
    bus.done();
    assert_eq!(scan.found, present);
    assert_eq!(scan.bus_errors, 0);
    let report = probe::report("/dev/i2c-1", &scan);
    assert!(report.contains("0x27  PCF8574 backpack"), "{report}");
    assert!(report.contains("0x3c  SSD1306 OLED"), "{report}");
}
