//! The directory's ambiguities, which the config accepts but an admin should know of: an address
//! that belongs to two organisations, a partner no organisation involves, agents who name no
//! locale. Pure: the directory in, checks out.

use std::collections::BTreeMap;

use crate::directory::{Directory, domain_of};

use super::Check;

const SUBJECT: &str = "directory";

/// Every check of the directory; one OK line when it has nothing to say.
pub fn check(d: &Directory) -> Vec<Check> {
    let mut out = Vec::new();
    out.extend(two_organisations(d));
    out.extend(uninvolved_partners(d));
    out.extend(agents_without_locale(d));
    if out.is_empty() {
        out.push(Check::ok(
            SUBJECT,
            "parties",
            format!(
                "{} agent(s), {} organisation(s), {} partner(s): every address belongs to one organisation, every partner is involved",
                d.agents.len(),
                d.organisations.len(),
                d.partners.len()
            ),
        ));
    }
    out
}

/// Addresses that belong to more than one organisation: a member or support group address of
/// one, and a member, support group address or domain of another.
fn two_organisations(d: &Directory) -> Vec<Check> {
    // address → (organisation, how), in directory order.
    let mut places: BTreeMap<&str, Vec<(&str, String)>> = BTreeMap::new();
    for org in &d.organisations {
        for m in &org.members {
            places
                .entry(&m.address)
                .or_default()
                .push((&org.name, "member".into()));
        }
        for a in &org.support_group {
            places
                .entry(a)
                .or_default()
                .push((&org.name, "support group".into()));
        }
    }
    for (address, found) in places.iter_mut() {
        let Some(domain) = domain_of(address) else {
            continue;
        };
        for org in &d.organisations {
            if org.domains.contains(&domain) {
                found.push((&org.name, format!("domain {domain}")));
            }
        }
    }
    let mut out = Vec::new();
    for (address, found) in places {
        let mut orgs: Vec<&str> = found.iter().map(|(o, _)| *o).collect();
        orgs.dedup();
        orgs.sort_unstable();
        orgs.dedup();
        if orgs.len() < 2 {
            continue;
        }
        let listed: Vec<String> = found
            .iter()
            .map(|(o, how)| format!("{o} ({how})"))
            .collect();
        let first_member = found
            .iter()
            .find(|(_, how)| how == "member")
            .map(|(o, _)| *o);
        let counts_as = match first_member {
            Some(o) => format!("its mail counts as {o}'s"),
            None => "which organisation it acts for is not clear".to_string(),
        };
        out.push(Check::warn(
            SUBJECT,
            "address in two organisations",
            format!("{address} is in {}: {counts_as}", listed.join(" and ")),
            "list the address with one organisation only, or move the domain to the organisation the address belongs to",
        ));
    }
    out
}

/// Partners that no organisation lists among its `partners`: never primary nor involved.
fn uninvolved_partners(d: &Directory) -> Vec<Check> {
    d.partners
        .iter()
        .filter(|p| {
            !d.organisations
                .iter()
                .any(|o| o.partners.iter().any(|n| n.eq_ignore_ascii_case(&p.name)))
        })
        .map(|p| {
            Check::warn(
                SUBJECT,
                "partner no organisation involves",
                format!(
                    "partner \"{}\" is in no organisation's partners: it is nobody's primary partner and sees no ticket unless an agent sends one to it",
                    p.name
                ),
                format!(
                    "add \"{}\" to the partners of the organisations it works for, or remove it from [[partners]]",
                    p.name
                ),
            )
        })
        .collect()
}

/// Agents whose config names no locale: they get mail in the help desk's.
fn agents_without_locale(d: &Directory) -> Vec<Check> {
    let without: Vec<&str> = d
        .agents
        .iter()
        .filter(|a| !a.own_locale)
        .map(|a| a.address.as_str())
        .collect();
    if without.is_empty() {
        return Vec::new();
    }
    vec![Check::warn(
        SUBJECT,
        "agents without a locale",
        format!(
            "{} name no locale: they get the help desk's ({})",
            without.join(", "),
            d.helpdesk.locale
        ),
        "set locale (en or de) in their [[team.agents]] entry if they read another language",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{Access, Agent, Member, Organisation, Partner};

    fn member(address: &str) -> Member {
        Member {
            address: address.into(),
            name: String::new(),
            access: Access::Portal,
            customer_it: false,
            locale: "en".into(),
            time_zone: "UTC".into(),
        }
    }

    fn org(name: &str, domain: &str, members: &[&str], partners: &[&str]) -> Organisation {
        Organisation {
            name: name.into(),
            locale: "en".into(),
            time_zone: "UTC".into(),
            domains: vec![domain.into()],
            members: members.iter().map(|a| member(a)).collect(),
            support_group: Vec::new(),
            partners: partners.iter().map(|p| p.to_string()).collect(),
            services: Default::default(),
        }
    }

    #[test]
    fn ambiguities_are_warnings_and_a_clear_directory_one_ok_line() {
        let mut d = Directory {
            organisations: vec![
                org("Acme", "acme.example", &["anna@acme.example"], &["IT"]),
                org("Globex", "globex.example", &["carl@acme.example"], &[]),
            ],
            partners: vec![
                Partner {
                    name: "IT".into(),
                    members: Vec::new(),
                    support_group: Vec::new(),
                },
                Partner {
                    name: "Idle".into(),
                    members: Vec::new(),
                    support_group: Vec::new(),
                },
            ],
            agents: vec![Agent {
                address: "alice@helpdesk.example".into(),
                name: "Alice".into(),
                locale: "en".into(),
                time_zone: "UTC".into(),
                own_locale: false,
            }],
            ..Default::default()
        };
        let checks = check(&d);
        let names: Vec<&str> = checks.iter().map(|c| c.check.as_str()).collect();
        assert_eq!(
            names,
            [
                "address in two organisations",
                "partner no organisation involves",
                "agents without a locale"
            ]
        );
        assert!(
            checks
                .iter()
                .all(|c| c.status == super::super::Status::Warn)
        );
        assert_eq!(
            checks[0].detail,
            "carl@acme.example is in Globex (member) and Acme (domain acme.example): its mail counts as Globex's"
        );
        assert!(checks[1].detail.contains("\"Idle\""));
        d.organisations[1].members.clear();
        d.partners.pop();
        d.agents[0].own_locale = true;
        let checks = check(&d);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].status, super::super::Status::Ok);
    }
}
