//! Whether a wired interface has an address: a box with one keeps its uplink in setup mode
//! (the setup page is then reached over the home network, with the one-time code).

use std::ffi::CStr;
use std::net::Ipv4Addr;

/// True when an interface other than loopback and `wifi` (the radio the hotspot would use)
/// has a routable or private IPv4 address (not link-local 169.254/16).
pub fn wired_uplink(wifi: &str) -> bool {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `list` and returns 0, or returns -1.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return false;
    }
    let mut found = false;
    let mut cursor = list;
    while !cursor.is_null() && !found {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, freed only below.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        if entry.ifa_addr.is_null() || entry.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it names.
        if i32::from(unsafe { (*entry.ifa_addr).sa_family }) != libc::AF_INET {
            continue;
        }
        // SAFETY: the family says this is a sockaddr_in.
        let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
        let address = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(entry.ifa_name) }.to_string_lossy();
        found = counts(&name, address, wifi);
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// The rule, apart from reading the interfaces.
fn counts(name: &str, address: Ipv4Addr, wifi: &str) -> bool {
    name != wifi && !address.is_loopback() && !address.is_link_local() && !address.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_other_interfaces_with_a_real_address_count() {
        let cases = [
            ("eth0", [192, 168, 1, 20], true),
            ("end0", [10, 0, 2, 15], true),
            ("wlan0", [192, 168, 1, 21], false),
            ("lo", [127, 0, 0, 1], false),
            ("eth0", [169, 254, 3, 4], false),
            ("eth0", [0, 0, 0, 0], false),
        ];
        for (name, address, expected) in cases {
            assert_eq!(
                counts(name, Ipv4Addr::from(address), "wlan0"),
                expected,
                "{name} {address:?}"
            );
        }
    }
}
