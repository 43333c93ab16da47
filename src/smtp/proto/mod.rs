//! SMTP protocol core (sans-I/O).
