//! The setup hotspot's name and passphrase: `Letterbox-XXXX` and four short words, both new
//! each time setup mode raises a hotspot, drawn from the OS random source. Pure apart from
//! that source, so the shapes are table-tested.
//!
//! The passphrase is four words from a list of 256 (32 bits): the network lives for the
//! minutes of setup, in range of one house, and guards only the setup page; a person types it
//! on a phone from a 128-pixel display, so it stays short (at most 19 characters) and has no
//! letters that look alike in a small font.

use crate::secret::{RandomError, Secret, random_bytes};

/// What every hotspot's name starts with; four characters follow.
pub const NAME_PREFIX: &str = "Letterbox-";
/// Characters of the name's tail: the one-time code's alphabet (no 0/O, 1/I/L, 5/S, 8/B).
const NAME_ALPHABET: &[u8] = b"2345679ACDEFGHJKMNPQRTUVWXYZ";
const NAME_TAIL: usize = 4;
/// Words in a passphrase, joined by `-`.
pub const PASSPHRASE_WORDS: usize = 4;

/// The hotspot as raised: its network name and WPA2 passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hotspot {
    pub ssid: String,
    pub passphrase: Secret<String>,
}

impl Hotspot {
    /// A new name and passphrase from the OS random source.
    pub fn new() -> Result<Hotspot, RandomError> {
        Ok(Hotspot::from_random(&random_bytes::<32>()?))
    }

    /// The name and passphrase `random` picks: rejection sampling keeps every name character
    /// equally likely; a word is one octet (the list has 256). Octets that run out (only if
    /// nearly all are rejected) make the name's tail shorter, never predictable.
    pub fn from_random(random: &[u8; 32]) -> Hotspot {
        let (words, rest) = random.split_at(PASSPHRASE_WORDS);
        let passphrase = words
            .iter()
            .map(|&byte| WORDS[usize::from(byte)])
            .collect::<Vec<_>>()
            .join("-");
        let alphabet = NAME_ALPHABET.len();
        let tail: String = rest
            .iter()
            .map(|&byte| usize::from(byte))
            .filter(|&byte| byte < 256 - 256 % alphabet)
            .take(NAME_TAIL)
            .map(|byte| char::from(NAME_ALPHABET[byte % alphabet]))
            .collect();
        Hotspot {
            ssid: format!("{NAME_PREFIX}{tail}"),
            passphrase: Secret::new(passphrase),
        }
    }
}

/// 256 short, common, distinct words (3 or 4 letters), in alphabetical order.
const WORDS: [&str; 256] = [
    "ant", "ape", "arm", "art", "ash", "bag", "bark", "barn", "bat", "bay", "beak", "bean", "bear",
    "bed", "bee", "bell", "belt", "bike", "bird", "boat", "bolt", "bone", "book", "boot", "bowl",
    "box", "bud", "bulb", "bun", "bus", "cab", "cake", "calm", "camp", "cap", "car", "card",
    "cart", "cat", "cave", "clay", "coat", "cod", "coin", "cone", "cook", "cord", "corn", "cow",
    "crab", "crow", "cub", "cup", "dam", "dart", "dawn", "deer", "den", "desk", "dew", "dime",
    "disc", "dish", "dock", "dog", "doll", "dome", "door", "dove", "drum", "duck", "dune", "dust",
    "ear", "east", "egg", "elk", "elm", "emu", "fan", "farm", "fawn", "fern", "fig", "film", "fin",
    "fire", "fish", "flag", "flax", "foam", "fog", "fork", "fox", "frog", "gate", "gem", "gift",
    "glow", "goat", "gold", "golf", "gull", "hail", "hall", "ham", "hare", "harp", "hat", "hawk",
    "hay", "hen", "herb", "hill", "hive", "hood", "hook", "horn", "hut", "ice", "ink", "iris",
    "iron", "ivy", "jam", "jar", "jay", "jet", "jug", "kale", "kelp", "key", "kiln", "kite",
    "kiwi", "knot", "lace", "lake", "lamb", "lamp", "lark", "leaf", "lid", "lily", "lime", "lion",
    "loaf", "lock", "loft", "log", "lynx", "mail", "map", "mask", "mast", "mat", "maze", "meal",
    "milk", "mint", "mist", "mole", "moon", "mop", "moss", "moth", "mug", "mule", "nail", "nest",
    "net", "newt", "nut", "oak", "oar", "oat", "oven", "owl", "pail", "palm", "pan", "park",
    "path", "pea", "peak", "pear", "peg", "pen", "pie", "pig", "pin", "pine", "pipe", "plum",
    "pod", "pond", "pony", "pool", "pot", "puma", "raft", "rail", "rain", "rake", "ram", "reed",
    "reef", "reel", "rice", "ring", "road", "robe", "rock", "roof", "rope", "rose", "ruby", "rug",
    "sack", "sage", "sail", "salt", "sand", "seal", "seed", "shed", "ship", "shoe", "silk", "silo",
    "sink", "sky", "sled", "snow", "soap", "sock", "sofa", "soup", "star", "stem", "sun", "swan",
    "tea", "tent", "tide", "tile", "tin", "toad", "toe", "tray", "tree", "tub", "tuba", "twig",
    "urn", "van",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{check_passphrase, check_ssid};

    #[test]
    fn names_and_passphrases_have_their_shape() {
        let cases: [([u8; 32], &str, &str); 3] = [
            ([0; 32], "Letterbox-2222", "ant-ant-ant-ant"),
            ([255; 32], "Letterbox-", "van-van-van-van"),
            (
                std::array::from_fn(|i| i as u8),
                "Letterbox-679A",
                "ant-ape-arm-art",
            ),
        ];
        for (random, ssid, passphrase) in cases {
            let hotspot = Hotspot::from_random(&random);
            assert_eq!(hotspot.ssid, ssid);
            assert_eq!(hotspot.passphrase.expose(), passphrase);
        }
    }

    #[test]
    fn every_hotspot_is_a_valid_wpa2_network_that_fits_the_panel() {
        let longest = WORDS.iter().map(|w| w.len()).max().unwrap_or(0);
        assert!(PASSPHRASE_WORDS * (longest + 1) - 1 <= 19);
        for _ in 0..50 {
            let hotspot = Hotspot::new().expect("random source");
            check_ssid(&hotspot.ssid).expect("a valid name");
            check_passphrase(&hotspot.passphrase).expect("a valid WPA2 passphrase");
            assert_eq!(hotspot.ssid.len(), NAME_PREFIX.len() + NAME_TAIL);
        }
        assert_ne!(Hotspot::new().ok(), Hotspot::new().ok());
    }

    #[test]
    fn the_words_are_distinct_short_and_lower_case() {
        let mut sorted = WORDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), WORDS.len());
        assert!(
            WORDS
                .iter()
                .all(|w| (3..=4).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase()))
        );
    }
}
