//! Addresses as the stages compare them: without their plus part (`support+bug@x` is
//! `support@x`'s), and lower-case where they are compared with the help desk's own. Pure string
//! work on an address already read from its header (`parse` reads them).

/// An address without its plus part, lower-cased (`Support+Bug@X.example` → `support@x.example`).
pub fn plain_address(address: &str) -> String {
    let address = address.to_ascii_lowercase();
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{domain}", base_local_part(local)),
        None => address,
    }
}

/// The local part of an address (everything before its last `@`), without its plus part, as
/// written: `anna+tickets@acme.example` → `anna`.
pub fn base_local_part(address: &str) -> &str {
    let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
    local.split('+').next().unwrap_or(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plus_part_is_left_out_and_the_case_of_plain_addresses_lowered() {
        assert_eq!(
            plain_address("Support+Bug@Helpdesk.Example"),
            "support@helpdesk.example"
        );
        assert_eq!(plain_address("support@x.example"), "support@x.example");
        assert_eq!(plain_address("no-at-sign"), "no-at-sign");
        assert_eq!(base_local_part("anna+tickets@acme.example"), "anna");
        assert_eq!(base_local_part("Anna@acme.example"), "Anna");
        assert_eq!(base_local_part("\"a@b\"@acme.example"), "\"a@b\"");
        assert_eq!(base_local_part("postmaster"), "postmaster");
        assert_eq!(base_local_part("+x@acme.example"), "");
    }
}
