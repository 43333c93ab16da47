//! A certificate's validity period, read from its DER. rustls-webpki checks validity only while
//! verifying a chain against trust anchors and does not expose the dates, and the two dates are
//! a fixed walk into the TBSCertificate (RFC 5280 §4.1), so a short walk is cheaper here than
//! an X.509 crate (the panel shows the expiry; the setup page checks an uploaded certificate).

/// `notBefore` and `notAfter`, as Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

/// Certificate → TBSCertificate → [version] serial signature issuer validity.
pub fn validity(der: &[u8]) -> Option<Validity> {
    let (0x30, certificate, _) = element(der)? else {
        return None;
    };
    let (0x30, tbs, _) = element(certificate)? else {
        return None;
    };
    let (tag, _, mut rest) = element(tbs)?;
    if tag == 0xA0 {
        rest = element(rest)?.2; // the version was explicit; skip the serial too
    }
    let rest = element(rest)?.2; // signature algorithm
    let rest = element(rest)?.2; // issuer
    let (0x30, validity, _) = element(rest)? else {
        return None;
    };
    let (before_tag, before, after) = element(validity)?;
    let (after_tag, after, _) = element(after)?;
    Some(Validity {
        not_before: time(before_tag, before)?,
        not_after: time(after_tag, after)?,
    })
}

/// One DER element: (tag, content, what follows).
fn element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    Some((tag, &rest[..length], &rest[length..]))
}

/// UTCTime (YYMMDDHHMMSSZ, RFC 5280 §4.1.2.5.1) or GeneralizedTime (YYYYMMDDHHMMSSZ).
fn time(tag: u8, content: &[u8]) -> Option<i64> {
    let time = std::str::from_utf8(content).ok()?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = time.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, time.get(2..)?)
        }
        0x18 => (time.get(..4)?.parse().ok()?, time.get(4..)?),
        _ => return None,
    };
    let field = |at: usize| -> Option<i64> { rest.get(at..at + 2)?.parse().ok() };
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    Some(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dates_are_read() {
        let mut params =
            rcgen::CertificateParams::new(vec!["mail.home.test".into()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2026, 1, 2);
        // After 2049 rcgen writes GeneralizedTime, before it UTCTime.
        params.not_after = rcgen::date_time_ymd(2051, 7, 4);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let validity = validity(cert.der()).expect("validity");
        assert_eq!(validity.not_before, 1_767_312_000); // 2026-01-02T00:00:00Z
        assert_eq!(validity.not_after, 2_572_041_600); // 2051-07-04T00:00:00Z
        assert_eq!(self::validity(b"\x30\x03\x02\x01\x01"), None);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
