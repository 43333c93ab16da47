//! POP3 protocol core (sans-I/O).
