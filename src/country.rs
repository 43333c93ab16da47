//! The Wi-Fi regulatory domain: which channels and transmit powers the radio may use depends
//! on the country it is in, and the Pi's radio (brcmfmac) keeps to the most restrictive
//! "world" rules, leaving some channels unused, until it is told. The setup wizard asks for
//! the country (`country` in the settings file), offering [`default_country`] of the
//! browser's language first; the network backends apply it.
//!
//! Codes are ISO 3166-1 alpha-2, the form `iw reg set` and wpa_supplicant's `country=` take.

/// ISO 3166-1 alpha-2 codes with their English names (Debian's iso-codes, 249 entries),
/// sorted by code so that [`name`] can search them.
pub const COUNTRIES: [(&str, &str); 249] = [
    ("AD", "Andorra"),
    ("AE", "United Arab Emirates"),
    ("AF", "Afghanistan"),
    ("AG", "Antigua and Barbuda"),
    ("AI", "Anguilla"),
    ("AL", "Albania"),
    ("AM", "Armenia"),
    ("AO", "Angola"),
    ("AQ", "Antarctica"),
    ("AR", "Argentina"),
    ("AS", "American Samoa"),
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("AW", "Aruba"),
    ("AX", "Åland Islands"),
    ("AZ", "Azerbaijan"),
    ("BA", "Bosnia and Herzegovina"),
    ("BB", "Barbados"),
    ("BD", "Bangladesh"),
    ("BE", "Belgium"),
    ("BF", "Burkina Faso"),
    ("BG", "Bulgaria"),
    ("BH", "Bahrain"),
    ("BI", "Burundi"),
    ("BJ", "Benin"),
    ("BL", "Saint Barthélemy"),
    ("BM", "Bermuda"),
    ("BN", "Brunei Darussalam"),
    ("BO", "Bolivia"),
    ("BQ", "Bonaire, Sint Eustatius and Saba"),
    ("BR", "Brazil"),
    ("BS", "Bahamas"),
    ("BT", "Bhutan"),
    ("BV", "Bouvet Island"),
    ("BW", "Botswana"),
    ("BY", "Belarus"),
    ("BZ", "Belize"),
    ("CA", "Canada"),
    ("CC", "Cocos (Keeling) Islands"),
    ("CD", "Congo, The Democratic Republic of the"),
    ("CF", "Central African Republic"),
    ("CG", "Congo"),
    ("CH", "Switzerland"),
    ("CI", "Côte d'Ivoire"),
    ("CK", "Cook Islands"),
    ("CL", "Chile"),
    ("CM", "Cameroon"),
    ("CN", "China"),
    ("CO", "Colombia"),
    ("CR", "Costa Rica"),
    ("CU", "Cuba"),
    ("CV", "Cabo Verde"),
    ("CW", "Curaçao"),
    ("CX", "Christmas Island"),
    ("CY", "Cyprus"),
    ("CZ", "Czechia"),
    ("DE", "Germany"),
    ("DJ", "Djibouti"),
    ("DK", "Denmark"),
    ("DM", "Dominica"),
    ("DO", "Dominican Republic"),
    ("DZ", "Algeria"),
    ("EC", "Ecuador"),
    ("EE", "Estonia"),
    ("EG", "Egypt"),
    ("EH", "Western Sahara"),
    ("ER", "Eritrea"),
    ("ES", "Spain"),
    ("ET", "Ethiopia"),
    ("FI", "Finland"),
    ("FJ", "Fiji"),
    ("FK", "Falkland Islands (Malvinas)"),
    ("FM", "Micronesia, Federated States of"),
    ("FO", "Faroe Islands"),
    ("FR", "France"),
    ("GA", "Gabon"),
    ("GB", "United Kingdom"),
    ("GD", "Grenada"),
    ("GE", "Georgia"),
    ("GF", "French Guiana"),
    ("GG", "Guernsey"),
    ("GH", "Ghana"),
    ("GI", "Gibraltar"),
    ("GL", "Greenland"),
    ("GM", "Gambia"),
    ("GN", "Guinea"),
    ("GP", "Guadeloupe"),
    ("GQ", "Equatorial Guinea"),
    ("GR", "Greece"),
    ("GS", "South Georgia and the South Sandwich Islands"),
    ("GT", "Guatemala"),
    ("GU", "Guam"),
    ("GW", "Guinea-Bissau"),
    ("GY", "Guyana"),
    ("HK", "Hong Kong"),
    ("HM", "Heard Island and McDonald Islands"),
    ("HN", "Honduras"),
    ("HR", "Croatia"),
    ("HT", "Haiti"),
    ("HU", "Hungary"),
    ("ID", "Indonesia"),
    ("IE", "Ireland"),
    ("IL", "Israel"),
    ("IM", "Isle of Man"),
    ("IN", "India"),
    ("IO", "British Indian Ocean Territory"),
    ("IQ", "Iraq"),
    ("IR", "Iran"),
    ("IS", "Iceland"),
    ("IT", "Italy"),
    ("JE", "Jersey"),
    ("JM", "Jamaica"),
    ("JO", "Jordan"),
    ("JP", "Japan"),
    ("KE", "Kenya"),
    ("KG", "Kyrgyzstan"),
    ("KH", "Cambodia"),
    ("KI", "Kiribati"),
    ("KM", "Comoros"),
    ("KN", "Saint Kitts and Nevis"),
    ("KP", "North Korea"),
    ("KR", "South Korea"),
    ("KW", "Kuwait"),
    ("KY", "Cayman Islands"),
    ("KZ", "Kazakhstan"),
    ("LA", "Laos"),
    ("LB", "Lebanon"),
    ("LC", "Saint Lucia"),
    ("LI", "Liechtenstein"),
    ("LK", "Sri Lanka"),
    ("LR", "Liberia"),
    ("LS", "Lesotho"),
    ("LT", "Lithuania"),
    ("LU", "Luxembourg"),
    ("LV", "Latvia"),
    ("LY", "Libya"),
    ("MA", "Morocco"),
    ("MC", "Monaco"),
    ("MD", "Moldova"),
    ("ME", "Montenegro"),
    ("MF", "Saint Martin (French part)"),
    ("MG", "Madagascar"),
    ("MH", "Marshall Islands"),
    ("MK", "North Macedonia"),
    ("ML", "Mali"),
    ("MM", "Myanmar"),
    ("MN", "Mongolia"),
    ("MO", "Macao"),
    ("MP", "Northern Mariana Islands"),
    ("MQ", "Martinique"),
    ("MR", "Mauritania"),
    ("MS", "Montserrat"),
    ("MT", "Malta"),
    ("MU", "Mauritius"),
    ("MV", "Maldives"),
    ("MW", "Malawi"),
    ("MX", "Mexico"),
    ("MY", "Malaysia"),
    ("MZ", "Mozambique"),
    ("NA", "Namibia"),
    ("NC", "New Caledonia"),
    ("NE", "Niger"),
    ("NF", "Norfolk Island"),
    ("NG", "Nigeria"),
    ("NI", "Nicaragua"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("NP", "Nepal"),
    ("NR", "Nauru"),
    ("NU", "Niue"),
    ("NZ", "New Zealand"),
    ("OM", "Oman"),
    ("PA", "Panama"),
    ("PE", "Peru"),
    ("PF", "French Polynesia"),
    ("PG", "Papua New Guinea"),
    ("PH", "Philippines"),
    ("PK", "Pakistan"),
    ("PL", "Poland"),
    ("PM", "Saint Pierre and Miquelon"),
    ("PN", "Pitcairn"),
    ("PR", "Puerto Rico"),
    ("PS", "Palestine, State of"),
    ("PT", "Portugal"),
    ("PW", "Palau"),
    ("PY", "Paraguay"),
    ("QA", "Qatar"),
    ("RE", "Réunion"),
    ("RO", "Romania"),
    ("RS", "Serbia"),
    ("RU", "Russian Federation"),
    ("RW", "Rwanda"),
    ("SA", "Saudi Arabia"),
    ("SB", "Solomon Islands"),
    ("SC", "Seychelles"),
    ("SD", "Sudan"),
    ("SE", "Sweden"),
    ("SG", "Singapore"),
    ("SH", "Saint Helena, Ascension and Tristan da Cunha"),
    ("SI", "Slovenia"),
    ("SJ", "Svalbard and Jan Mayen"),
    ("SK", "Slovakia"),
    ("SL", "Sierra Leone"),
    ("SM", "San Marino"),
    ("SN", "Senegal"),
    ("SO", "Somalia"),
    ("SR", "Suriname"),
    ("SS", "South Sudan"),
    ("ST", "Sao Tome and Principe"),
    ("SV", "El Salvador"),
    ("SX", "Sint Maarten (Dutch part)"),
    ("SY", "Syria"),
    ("SZ", "Eswatini"),
    ("TC", "Turks and Caicos Islands"),
    ("TD", "Chad"),
    ("TF", "French Southern Territories"),
    ("TG", "Togo"),
    ("TH", "Thailand"),
    ("TJ", "Tajikistan"),
    ("TK", "Tokelau"),
    ("TL", "Timor-Leste"),
    ("TM", "Turkmenistan"),
    ("TN", "Tunisia"),
    ("TO", "Tonga"),
    ("TR", "Türkiye"),
    ("TT", "Trinidad and Tobago"),
    ("TV", "Tuvalu"),
    ("TW", "Taiwan"),
    ("TZ", "Tanzania"),
    ("UA", "Ukraine"),
    ("UG", "Uganda"),
    ("UM", "United States Minor Outlying Islands"),
    ("US", "United States"),
    ("UY", "Uruguay"),
    ("UZ", "Uzbekistan"),
    ("VA", "Holy See (Vatican City State)"),
    ("VC", "Saint Vincent and the Grenadines"),
    ("VE", "Venezuela"),
    ("VG", "Virgin Islands, British"),
    ("VI", "Virgin Islands, U.S."),
    ("VN", "Vietnam"),
    ("VU", "Vanuatu"),
    ("WF", "Wallis and Futuna"),
    ("WS", "Samoa"),
    ("YE", "Yemen"),
    ("YT", "Mayotte"),
    ("ZA", "South Africa"),
    ("ZM", "Zambia"),
    ("ZW", "Zimbabwe"),
];

/// The countries in the order a person looks for them: by name, an accented first letter
/// with its plain one ("Åland Islands" among the A's).
pub fn by_name() -> &'static [(&'static str, &'static str)] {
    static SORTED: std::sync::LazyLock<Vec<(&str, &str)>> = std::sync::LazyLock::new(|| {
        let mut sorted = COUNTRIES.to_vec();
        sorted.sort_by_key(|(_, name)| sort_key(name));
        sorted
    });
    &SORTED
}

/// `name` with the accented letters of the list's names as their plain ones.
fn sort_key(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'Å' => 'A',
            'é' => 'e',
            'ô' => 'o',
            'ç' => 'c',
            'ü' => 'u',
            other => other,
        })
        .collect()
}

/// The country's English name, if `code` (upper case) is an ISO 3166-1 alpha-2 code.
pub fn name(code: &str) -> Option<&'static str> {
    COUNTRIES
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| COUNTRIES[i].1)
}

/// A code as the settings keep it (upper case), or why it is refused.
pub fn check(code: &str) -> Result<String, String> {
    let upper = code.to_ascii_uppercase();
    match name(&upper) {
        Some(_) => Ok(upper),
        None => Err(format!(
            "{code:?} is not an ISO 3166-1 alpha-2 country code"
        )),
    }
}

/// The country of the browser's preferred language that names one (RFC 9110 §12.5.4
/// `Accept-Language`; RFC 5646 language tags): "de-DE,de;q=0.9" gives "DE",
/// "zh-Hant-TW" gives "TW". Ranges are taken by weight, then in the order given; one without a
/// region subtag ("de"), with a numeric one ("es-419", a UN M.49 area, not a country) or
/// with weight 0 gives nothing. `None` when no range names a country: the wizard then asks
/// without a default.
pub fn default_country(accept_language: &str) -> Option<String> {
    let mut ranges: Vec<(u16, &str)> = accept_language
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let tag = parts.next()?.trim();
            let weight = parts
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .or_else(|| p.trim().strip_prefix("Q="))
                })
                .map_or(Some(1000), weight)?;
            (weight > 0).then_some((weight, tag))
        })
        .collect();
    // Stable: equal weights keep the browser's order.
    ranges.sort_by_key(|(weight, _)| std::cmp::Reverse(*weight));
    ranges.into_iter().find_map(|(_, tag)| region(tag))
}

/// RFC 9110 §12.4.2 `qvalue` in thousandths: "0", "0.8", "1.000"; anything else is not a
/// weight and drops the range.
fn weight(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The region subtag of a language tag (RFC 5646 §2.2.4: two letters after the language and
/// an optional four-letter script), if it is a known country.
fn region(tag: &str) -> Option<String> {
    let mut subtags = tag.split(['-', '_']).skip(1);
    let mut next = subtags.next()?;
    if next.len() == 4 {
        next = subtags.next()?;
    }
    if next.len() != 2 || !next.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    check(next).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browsers_language_gives_a_default_country() {
        let cases = [
            ("de-DE,de;q=0.9", Some("DE")),
            ("de-CH, de;q=0.9, en;q=0.8", Some("CH")),
            ("en-US,en;q=0.9", Some("US")),
            ("en-gb", Some("GB")),
            ("fr;q=0.9, fr-BE;q=0.8, en-US;q=0.95", Some("US")),
            ("de, en-GB;q=0.7", Some("GB")),
            ("zh-Hant-TW,zh;q=0.8", Some("TW")),
            ("pt_BR", Some("BR")),
            ("es-419,es;q=0.9", None),
            ("de", None),
            ("en-US;q=0, fr", None),
            ("xx-ZZ, nl-NL;q=0.5", Some("NL")),
            ("it-IT;q=2, sv-SE;q=0.3", Some("SE")),
            ("*", None),
            ("", None),
            ("en-US;q=0.5, en-CA;q=0.5", Some("US")),
        ];
        for (header, expected) in cases {
            assert_eq!(default_country(header).as_deref(), expected, "{header:?}");
        }
    }

    #[test]
    fn only_iso_3166_alpha_2_codes_are_countries() {
        assert_eq!(check("de"), Ok("DE".to_string()));
        assert_eq!(check("GB"), Ok("GB".to_string()));
        for bad in ["UK", "EU", "00", "D", "DEU", "", "ZZ"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        assert_eq!(name("NZ"), Some("New Zealand"));
        assert_eq!(COUNTRIES.len(), 249);
        assert!(COUNTRIES.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        let names: Vec<&str> = by_name().iter().map(|(_, name)| *name).collect();
        assert_eq!(names.len(), COUNTRIES.len());
        assert_eq!(&names[..3], ["Afghanistan", "Åland Islands", "Albania"]);
        let uk = names
            .iter()
            .position(|n| *n == "United Kingdom")
            .expect("UK");
        assert_eq!(names[uk - 1], "United Arab Emirates");
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii() || "Åéôçü".contains(c))),
            "every accented letter has a plain one in sort_key"
        );
    }

    #[test]
    fn weights_are_qvalues() {
        let cases = [
            ("1", Some(1000)),
            ("1.000", Some(1000)),
            ("0.8", Some(800)),
            ("0.85", Some(850)),
            ("0", Some(0)),
            ("1.5", None),
            ("0.1234", None),
            ("high", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(weight(text), expected, "{text:?}");
        }
    }
}
