//! Where clients put their project key, and DSNs: arbitrary text must never panic, and a DSN
//! Vigie prints must parse back to the same DSN.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_protocol::{find_project_key, Dsn, KeySources};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = find_project_key(KeySources {
        x_sentry_auth: Some(text),
        authorization: Some(text),
        query: Some(text),
    });
    if let Ok(dsn) = Dsn::parse(text) {
        let again = Dsn::parse(&dsn.to_string()).expect("a printed DSN parses");
        assert_eq!(again, dsn);
    }
});
