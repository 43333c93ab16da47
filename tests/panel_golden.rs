//! Golden renderings: every screen rendered from one fixed status, at both OLED sizes
//! compared pixel by pixel with the PNGs in `tests/golden/`, and at both character LCD
//! sizes compared character by character with `tests/golden/text-16x2.txt` and
//! `text-20x4.txt`, and as LCD pictures (`tests/golden/lcd-*.png`, byte by byte) — the same
//! pictures and text the README shows, which a test checks. After an intended change,
//! regenerate them with `UPDATE_GOLDEN=1 cargo test --test panel_golden` and look at them
//! before committing.

use std::path::PathBuf;

use letterbox::panel::{Frame, Page, PanelSize, Screen, TextSize, layout, render, view};
use letterbox::status::{Alert, ListenerStatus, Mode, SetupInfo, SpamCounts, Status, Storage};

/// The pictures are stored at this scale so that they are readable in the README.
const SCALE: u32 = 3;
/// 2025-06-01 12:00:00 UTC.
const NOW: i64 = 1_748_779_200;

fn listener(service: &str, address: &str, up: bool, error: Option<&str>) -> ListenerStatus {
    ListenerStatus {
        service: service.into(),
        address: address.into(),
        up,
        error: error.map(str::to_string),
    }
}

fn status() -> Status {
    Status {
        version: "0.1.0".into(),
        hostname: "mail.home.example".into(),
        running: true,
        listeners: vec![
            listener("smtp", "0.0.0.0:25", true, None),
            listener("submission", "0.0.0.0:587", true, None),
            listener("submissions", "0.0.0.0:465", true, None),
            listener("pop3", "0.0.0.0:110", true, None),
            listener("pop3s", "0.0.0.0:995", true, None),
            listener("imap", "0.0.0.0:143", true, None),
            listener("imaps", "0.0.0.0:993", true, None),
            listener(
                "web",
                "0.0.0.0:80",
                false,
                Some("Address in use (os error 98)"),
            ),
        ],
        messages_stored: 1234,
        mail_bytes: 310 << 20,
        store_bytes: 330 << 20,
        queue_depth: 2,
        queue_oldest: Some(NOW - 2 * 3600 - 5 * 60),
        last_delivery: Some(NOW - 5 * 60),
        last_outbound: Some(NOW - 26 * 3600),
        spam_today: SpamCounts {
            day: NOW / 86400,
            refused: 12,
            greylisted: 30,
            junk: 4,
        },
        storage: Some(Storage {
            total_bytes: 29 << 30,
            free_bytes: 12 << 30,
        }),
        mode: Mode::Setup,
        setup_mode: true,
        started_at: Some(NOW - 3 * 86400 - 4 * 3600),
        addresses: vec!["192.168.1.23".into(), "fd00::23".into()],
        soc_temperature_mc: Some(48_312),
        certificate_expires: Some(NOW + 200 * 86400),
        alerts: vec![
            Alert::StorageLow {
                free_bytes: 900 << 20,
                total_bytes: 29 << 30,
            },
            Alert::QueueStuck {
                since: NOW - 30 * 3600,
            },
        ],
        setup: Some(SetupInfo {
            network: Some("Letterbox-7F3A".into()),
            passphrase: Some("otter-maple-42".into()),
            url: "http://10.42.0.1/".into(),
            code: Some("K7MQ4XRT".into()),
            problem: None,
        }),
        wifi: None,
        health: None,
        backup: None,
    }
}

fn wired(status: &Status) -> Status {
    let mut wired = status.clone();
    wired.setup = Some(SetupInfo {
        network: None,
        passphrase: None,
        url: "http://192.168.1.20/setup".into(),
        code: Some("K7MQ4XRT".into()),
        problem: None,
    });
    wired
}

/// Every screen the panel can show, by file name.
fn screens() -> Vec<(&'static str, Screen)> {
    let alerts = status().alerts;
    vec![
        ("ports", Screen::Page(Page::Ports)),
        ("mail", Screen::Page(Page::Mail)),
        ("system", Screen::Page(Page::System)),
        ("setup", Screen::Page(Page::Setup)),
        // A wired box: no hotspot, the page's address and the one-time code.
        ("setup-wired", Screen::Page(Page::Setup)),
        (
            "alert-storage",
            Screen::Alert {
                alert: alerts[0].clone(),
                index: 1,
                count: 2,
            },
        ),
        (
            "alert-queue",
            Screen::Alert {
                alert: alerts[1].clone(),
                index: 2,
                count: 2,
            },
        ),
        (
            "alert-certificate",
            Screen::Alert {
                alert: Alert::CertificateExpiring {
                    expires_at: NOW + 5 * 86400,
                },
                index: 1,
                count: 1,
            },
        ),
        (
            "alert-data-device",
            Screen::Alert {
                alert: Alert::DataDeviceMissing {
                    path: "/var/lib/letterbox".into(),
                },
                index: 1,
                count: 1,
            },
        ),
        ("hold", Screen::Hold { seconds: 6 }),
        ("shutting-down", Screen::ShuttingDown),
    ]
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn every_screen_matches_its_golden_image_at_both_sizes() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let status = status();
    let mut compared = 0;
    let mut failures = Vec::new();
    for size in [PanelSize::W128H64, PanelSize::W128H32] {
        for (name, screen) in screens() {
            let wired = wired(&status);
            let status = if name == "setup-wired" {
                &wired
            } else {
                &status
            };
            let frame = render(&screen, status, NOW, size);
            let path = golden_dir().join(format!("{name}-{size}.png"));
            if update {
                frame.write_png(&path, SCALE).expect("write golden image");
                continue;
            }
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 makes it)", path.display()));
            let golden = Frame::from_png(&bytes, SCALE).expect("decode golden image");
            compared += 1;
            if golden != frame {
                let actual = std::env::temp_dir().join(format!("letterbox-{name}-{size}.png"));
                frame.write_png(&actual, SCALE).expect("write actual image");
                failures.push(format!(
                    "{name} {size} differs from {}; now: {}\n{frame:?}",
                    path.display(),
                    actual.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    if !update {
        assert_eq!(compared, 2 * screens().len(), "every screen at both sizes");
    }
}

#[test]
fn pages_change_when_the_status_changes() {
    // A guard against golden images of blank or constant frames.
    let mut calm = status();
    calm.messages_stored = 7;
    for size in [PanelSize::W128H64, PanelSize::W128H32] {
        let a = render(&Screen::Page(Page::Mail), &status(), NOW, size);
        let b = render(&Screen::Page(Page::Mail), &calm, NOW, size);
        assert!(!a.is_blank());
        assert_ne!(a, b);
    }
}

/// Every screen at `size` as the framed text a terminal shows, each under its name.
fn text_rendering(size: TextSize) -> String {
    let status = status();
    let wired = wired(&status);
    let mut out = String::new();
    for (name, screen) in screens() {
        let status = if name == "setup-wired" {
            &wired
        } else {
            &status
        };
        let screen = layout(&view(&screen, status, NOW), size);
        out.push_str(&format!("{name}\n{}\n", screen.framed()));
    }
    out
}

#[test]
fn every_screen_matches_its_golden_text_at_16x2_and_20x4() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut compared = 0;
    for size in TextSize::ALL {
        let text = text_rendering(size);
        let path = golden_dir().join(format!("text-{size}.txt"));
        if update {
            std::fs::write(&path, &text).expect("write golden text");
            continue;
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 makes it)", path.display()));
        assert_eq!(
            golden.matches("\n+").count(),
            2 * screens().len(),
            "{}: a box per screen",
            path.display()
        );
        if golden != text {
            let actual = std::env::temp_dir().join(format!("letterbox-text-{size}.txt"));
            std::fs::write(&actual, &text).expect("write actual text");
            panic!(
                "{size} differs from {}; now ({}):\n{text}",
                path.display(),
                actual.display()
            );
        }
        compared += 1;
    }
    if !update {
        assert_eq!(compared, TextSize::ALL.len());
    }
}

/// The LCD pictures the README shows are stored at this scale (dots of 3×3 pixels).
const LCD_SCALE: u32 = 3;

#[test]
fn every_screen_matches_its_lcd_picture_at_16x2_and_20x4() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let status = status();
    let wired = wired(&status);
    let mut failures = Vec::new();
    let mut compared = 0;
    for size in TextSize::ALL {
        for (name, screen) in screens() {
            let status = if name == "setup-wired" {
                &wired
            } else {
                &status
            };
            let screen = layout(&view(&screen, status, NOW), size);
            let png = letterbox::panel::lcd_picture::to_png(&screen, LCD_SCALE).expect("png");
            let path = golden_dir().join(format!("lcd-{name}-{size}.png"));
            if update {
                std::fs::write(&path, &png).expect("write golden picture");
                continue;
            }
            let golden = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 makes it)", path.display()));
            compared += 1;
            if golden != png {
                failures.push(format!("{name} {size} differs from {}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    if !update {
        assert_eq!(compared, 2 * screens().len());
    }
}

#[test]
fn every_line_fits_and_no_screen_is_empty_on_a_character_lcd() {
    let status = status();
    for size in TextSize::ALL {
        for (name, screen) in screens() {
            let screen = layout(&view(&screen, &status, NOW), size);
            let lines = screen.lines();
            assert_eq!(lines.len(), size.rows(), "{name} {size}");
            for line in &lines {
                assert_eq!(
                    line.chars().count(),
                    size.columns(),
                    "{name} {size}: {line:?}"
                );
            }
            assert!(
                lines.iter().filter(|l| !l.trim().is_empty()).count() >= 2,
                "{name} {size} says too little:\n{screen:?}"
            );
        }
    }
}

#[test]
fn the_readme_shows_the_golden_text() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README.md");
    let mut boxes = 0;
    for size in TextSize::ALL {
        let golden = std::fs::read_to_string(golden_dir().join(format!("text-{size}.txt")))
            .expect("golden text");
        // Each screen is its name, then the box up to the blank line.
        for block in golden.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let (name, picture) = block.split_once('\n').expect("name and box");
            let picture = picture.trim_end();
            assert!(
                readme.contains(picture),
                "README.md lacks the {size} {name} screen:\n{picture}"
            );
            let image = format!("tests/golden/lcd-{name}-{size}.png");
            assert!(readme.contains(&image), "README.md does not show {image}");
            boxes += 1;
        }
    }
    assert_eq!(boxes, 2 * screens().len());
}
