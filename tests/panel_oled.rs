//! The SSD1306 driver against a mock I2C bus (embedded-hal-mock): the exact init and flush
//! byte sequences (SSD1306 datasheet §9, command table), only the changed rectangle sent
//! after the first picture, brightness and power commands, and retry after the panel is
//! gone (hot-plug).

use std::time::{Duration, Instant};

use embedded_hal::i2c::ErrorKind;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction};
use letterbox::board::{DisplaySize, PanelFacts, PanelKind, Rotation};
use letterbox::panel::oled::{self, Oled};
use letterbox::panel::{Frame, Light, PanelSize};

/// A command write: control byte 0x00, then the command bytes.
fn command(address: u8, bytes: &[u8]) -> Transaction {
    let mut data = vec![0x00];
    data.extend_from_slice(bytes);
    Transaction::write(address, data)
}

/// The power-up sequence for a panel of `size`, the right way up or turned over.
fn init_sequence(address: u8, size: PanelSize, rotation: Rotation) -> Vec<Transaction> {
    let (multiplex, com_pins) = match size {
        PanelSize::W128H64 => (0x3F, 0x12), // 64 rows, alternative COM pin layout
        PanelSize::W128H32 => (0x1F, 0x02), // 32 rows, sequential COM pins
    };
    let (segment_remap, com_scan) = match rotation {
        Rotation::Normal => (0xA1, 0xC8),
        Rotation::UpsideDown => (0xA0, 0xC0),
    };
    let commands: Vec<Vec<u8>> = vec![
        vec![0xAE],            // display off
        vec![0xD5, 0x80],      // clock divide ratio / oscillator frequency
        vec![0xA8, multiplex], // multiplex ratio = rows - 1
        vec![0xD3, 0x00],      // display offset 0
        vec![0x40],            // start line 0
        vec![0x8D, 0x14],      // charge pump on (no external VCC on these modules)
        vec![0x20, 0x00],      // horizontal addressing
        vec![0xDA, com_pins],  // COM pins configuration
        vec![segment_remap],   // segment remap
        vec![com_scan],        // COM output scan direction
        vec![0xD9, 0x21],      // pre-charge period
        vec![0x81, 0x5F],      // contrast
        vec![0xDB, 0x40],      // VCOMH deselect level
        vec![0xA4],            // show RAM contents
        vec![0xA6],            // not inverted
        vec![0x2E],            // no scrolling
        vec![0xAF],            // display on
    ];
    commands.iter().map(|c| command(address, c)).collect()
}

/// The frame in the SSD1306's layout: pages of 8 rows, one byte per column, LSB on top.
fn pages(frame: &Frame, first_page: u32, last_page: u32, first_x: u32, last_x: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for page in first_page..=last_page {
        for x in first_x..=last_x {
            let mut byte = 0u8;
            for bit in 0..8 {
                if frame.pixel(x, page * 8 + bit) {
                    byte |= 1 << bit;
                }
            }
            out.push(byte);
        }
    }
    out
}

/// Window commands, then each page's bytes in writes of at most 16 (control byte 0x40).
fn flush(
    address: u8,
    frame: &Frame,
    columns: (u32, u32),
    page_range: (u32, u32),
) -> Vec<Transaction> {
    let byte = |v: u32| u8::try_from(v).expect("small");
    let mut out = vec![
        command(address, &[0x21, byte(columns.0), byte(columns.1)]),
        command(address, &[0x22, byte(page_range.0), byte(page_range.1)]),
    ];
    for page in page_range.0..=page_range.1 {
        let data = pages(frame, page, page, columns.0, columns.1);
        for chunk in data.chunks(16) {
            let mut write = vec![0x40];
            write.extend_from_slice(chunk);
            out.push(Transaction::write(address, write));
        }
    }
    out
}

fn picture(size: PanelSize, pixels: &[(u32, u32)]) -> Frame {
    let mut frame = Frame::new(size);
    for (x, y) in pixels {
        frame.set(*x, *y, true);
    }
    frame
}

#[test]
fn init_then_full_picture_then_only_the_changed_rectangle() {
    let first = picture(PanelSize::W128H64, &[(9, 17), (10, 18), (127, 63)]);
    let second = picture(
        PanelSize::W128H64,
        &[(9, 17), (10, 18), (127, 63), (40, 33), (44, 41)],
    );
    let mut expected = init_sequence(0x3C, PanelSize::W128H64, Rotation::Normal);
    expected.extend(flush(0x3C, &first, (0, 127), (0, 7)));
    // Two new pixels: columns 40..44, rows 33..41 = pages 4..5.
    expected.extend(flush(0x3C, &second, (40, 44), (4, 5)));
    let mut bus = Mock::new(&expected);
    let mut oled = Oled::new(bus.clone(), 0x3C, PanelSize::W128H64, Rotation::Normal);
    oled.init().expect("init");
    oled.show(&first).expect("first picture");
    oled.show(&second).expect("second picture");
    // The same picture again sends nothing.
    oled.show(&second).expect("unchanged");
    bus.done();
}

#[test]
fn small_panel_at_the_other_address_turned_over_dims_and_sleeps() {
    let address = 0x3D;
    let blank = Frame::new(PanelSize::W128H32);
    let dot = picture(PanelSize::W128H32, &[(100, 20)]);
    let mut expected = init_sequence(address, PanelSize::W128H32, Rotation::UpsideDown);
    expected.extend(flush(address, &blank, (0, 127), (0, 3)));
    expected.extend(flush(address, &dot, (100, 100), (2, 2)));
    expected.extend([
        command(address, &[0xD9, 0x11]), // dim: shortest pre-charge,
        command(address, &[0x81, 0x00]), // lowest contrast
        command(address, &[0xAE]),       // off
        command(address, &[0xD9, 0x21]), // full again
        command(address, &[0x81, 0x5F]),
        command(address, &[0xAF]), // and on
    ]);
    let mut bus = Mock::new(&expected);
    let mut oled = Oled::new(
        bus.clone(),
        address,
        PanelSize::W128H32,
        Rotation::UpsideDown,
    );
    oled.init().expect("init");
    oled.show(&blank).expect("blank");
    oled.show(&dot).expect("dot");
    oled.set_light(Light::Dim).expect("dim");
    oled.set_light(Light::Off).expect("off");
    oled.set_light(Light::Full).expect("full");
    bus.done();
}

#[test]
fn a_missing_panel_is_retried_with_backoff_and_comes_back() {
    let facts = PanelFacts {
        i2c: "/dev/i2c-1".into(),
        kind: PanelKind::Ssd1306,
        address: 0x3C,
        size: DisplaySize::Pixels(PanelSize::W128H32),
        rotation: Rotation::Normal,
    };
    let frame = picture(PanelSize::W128H32, &[(5, 5)]);
    // 1. Nobody answers: the first init command is not acknowledged.
    // 2. After the backoff the panel is there: init, then the picture.
    let mut expected = vec![command(0x3C, &[0xAE]).with_error(ErrorKind::NoAcknowledge(
        embedded_hal::i2c::NoAcknowledgeSource::Address,
    ))];
    expected.extend(init_sequence(0x3C, PanelSize::W128H32, Rotation::Normal));
    expected.extend(flush(0x3C, &frame, (0, 127), (0, 3)));
    // 3. Five seconds later the probe (display-on, already on) fails: unplugged.
    expected.push(command(0x3C, &[0xAF]).with_error(ErrorKind::NoAcknowledge(
        embedded_hal::i2c::NoAcknowledgeSource::Address,
    )));
    // 4. Plugged in again: a fresh init and the whole picture.
    expected.extend(init_sequence(0x3C, PanelSize::W128H32, Rotation::Normal));
    expected.extend(flush(0x3C, &frame, (0, 127), (0, 3)));
    let mut bus = Mock::new(&expected);

    let opens = std::cell::Cell::new(0);
    let handle = bus.clone();
    let open = || {
        opens.set(opens.get() + 1);
        Ok(handle.clone())
    };
    let mut driver = oled::driver(open, "mock".into(), &facts);
    let start = Instant::now();
    driver.show(&frame, Light::Full, start);
    assert!(!driver.is_connected());
    driver.poll(start + Duration::from_millis(500)); // backoff: not yet
    assert_eq!(opens.get(), 1);
    driver.poll(start + Duration::from_secs(1));
    assert!(driver.is_connected());
    driver.poll(start + Duration::from_secs(2)); // nothing new to send
    // The probe is due five seconds after connecting, at the first poll after that.
    driver.poll(start + Duration::from_secs(3));
    driver.poll(start + Duration::from_secs(9));
    assert!(!driver.is_connected(), "the failed probe drops the panel");
    driver.poll(start + Duration::from_millis(9500)); // backoff again
    assert_eq!(opens.get(), 2);
    driver.poll(start + Duration::from_secs(10));
    assert!(driver.is_connected());
    assert_eq!(opens.get(), 3);
    drop(driver);
    bus.done();
}
