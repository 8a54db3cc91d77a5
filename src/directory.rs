//! The directory of parties: the support team, customer organisations and partners.
//!
//! Built from the config (see [`crate::config`]) and replaced whole on reload. Pure data and lookups:
//! who is this address, which organisation owns this domain, who is a partner's support group.
//! Addresses are compared case-insensitively (stored lower-case).

use std::collections::BTreeMap;

use serde::Serialize;

/// Everyone deskmail knows, by role.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Directory {
    pub helpdesk: Helpdesk,
    pub agents: Vec<Agent>,
    pub groups: Vec<AgentGroup>,
    pub organisations: Vec<Organisation>,
    pub partners: Vec<Partner>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Helpdesk {
    pub name: String,
    /// The address deskmail receives mail at.
    pub address: String,
    /// The support team's own notification address (never the receiving address).
    pub team_address: String,
    pub time_zone: String,
    pub locale: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    pub address: String,
    pub name: String,
    pub locale: String,
    pub time_zone: String,
    /// Whether the config names the agent's locale (else it is the help desk's).
    #[serde(skip)]
    pub own_locale: bool,
}

/// A group of agents with its own notification address (e.g. "development").
#[derive(Debug, Clone, Serialize)]
pub struct AgentGroup {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Organisation {
    pub name: String,
    /// The locale and time zone of mail to the organisation's support group.
    pub locale: String,
    pub time_zone: String,
    pub domains: Vec<String>,
    pub members: Vec<Member>,
    /// The customer support group: mailed when a ticket is sent "To Customer".
    pub support_group: Vec<String>,
    /// The partners involved in this organisation's tickets; the first is its primary partner.
    pub partners: Vec<String>,
    /// The services of the organisation's contract, each with its sub-categories.
    pub services: BTreeMap<String, Vec<String>>,
}

/// How much of its organisation's tickets a customer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Sees the tickets they submitted (or watch).
    Portal,
    /// Sees all the organisation's tickets.
    Power,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub address: String,
    pub name: String,
    pub access: Access,
    /// A member of the organisation's own IT (the `co-managed` preset's second party).
    pub customer_it: bool,
    pub locale: String,
    pub time_zone: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Partner {
    pub name: String,
    pub members: Vec<PartnerMember>,
    /// Mailed when a ticket is sent to this partner; its members' addresses when empty.
    pub support_group: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartnerMember {
    pub address: String,
    pub name: String,
    pub locale: String,
    pub time_zone: String,
}

/// A known person and the side they are on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub address: String,
    pub name: String,
    pub locale: String,
    pub time_zone: String,
    pub party: Party,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Party {
    Agent,
    Customer {
        organisation: String,
        access: Access,
        customer_it: bool,
    },
    Partner {
        partner: String,
    },
}

impl Party {
    /// The role's name as `ticket show` prints it.
    pub fn role_name(&self) -> &'static str {
        match self {
            Party::Agent => "agent",
            Party::Customer { .. } => "customer",
            Party::Partner { .. } => "partner",
        }
    }
}

/// Lower-cases an address and trims it, the form the directory stores.
pub fn normalize_address(address: &str) -> String {
    address.trim().to_lowercase()
}

/// The domain part of an address, lower-case.
pub fn domain_of(address: &str) -> Option<String> {
    let (_, domain) = address.trim().rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_lowercase())
}

impl Directory {
    /// Who this address is, if the directory lists them.
    pub fn person(&self, address: &str) -> Option<Person> {
        let address = normalize_address(address);
        if let Some(a) = self.agents.iter().find(|a| a.address == address) {
            return Some(Person {
                address,
                name: a.name.clone(),
                locale: a.locale.clone(),
                time_zone: a.time_zone.clone(),
                party: Party::Agent,
            });
        }
        for org in &self.organisations {
            if let Some(m) = org.members.iter().find(|m| m.address == address) {
                return Some(Person {
                    address,
                    name: m.name.clone(),
                    locale: m.locale.clone(),
                    time_zone: m.time_zone.clone(),
                    party: Party::Customer {
                        organisation: org.name.clone(),
                        access: m.access,
                        customer_it: m.customer_it,
                    },
                });
            }
        }
        for p in &self.partners {
            if let Some(m) = p.members.iter().find(|m| m.address == address) {
                return Some(Person {
                    address,
                    name: m.name.clone(),
                    locale: m.locale.clone(),
                    time_zone: m.time_zone.clone(),
                    party: Party::Partner {
                        partner: p.name.clone(),
                    },
                });
            }
        }
        None
    }

    /// A listed person, or a portal user of the organisation that owns the address's domain.
    pub fn person_or_domain_member(&self, address: &str) -> Option<Person> {
        if let Some(p) = self.person(address) {
            return Some(p);
        }
        let org = self.organisation_for_domain(&domain_of(address)?)?;
        Some(Person {
            address: normalize_address(address),
            name: String::new(),
            locale: self.helpdesk.locale.clone(),
            time_zone: self.helpdesk.time_zone.clone(),
            party: Party::Customer {
                organisation: org.name.clone(),
                access: Access::Portal,
                customer_it: false,
            },
        })
    }

    pub fn organisation(&self, name: &str) -> Option<&Organisation> {
        self.organisations
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
    }

    pub fn organisation_for_domain(&self, domain: &str) -> Option<&Organisation> {
        self.organisations
            .iter()
            .find(|o| o.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
    }

    pub fn partner(&self, name: &str) -> Option<&Partner> {
        self.partners
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    pub fn group(&self, name: &str) -> Option<&AgentGroup> {
        self.groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
    }

    /// An agent by address or by name (case-insensitive).
    pub fn agent(&self, key: &str) -> Option<&Agent> {
        let key = key.trim();
        self.agents
            .iter()
            .find(|a| a.address.eq_ignore_ascii_case(key) || a.name.eq_ignore_ascii_case(key))
    }

    /// The organisation's customer-IT members, in directory order.
    pub fn customer_it(&self, organisation: &str) -> Vec<&Member> {
        self.organisation(organisation)
            .map(|o| o.members.iter().filter(|m| m.customer_it).collect())
            .unwrap_or_default()
    }

    /// The addresses that receive mail for a partner: its support group, else its members.
    pub fn partner_addresses(&self, name: &str) -> Vec<String> {
        match self.partner(name) {
            Some(p) if !p.support_group.is_empty() => p.support_group.clone(),
            Some(p) => p.members.iter().map(|m| m.address.clone()).collect(),
            None => Vec::new(),
        }
    }

    /// The number of people listed, for summaries.
    pub fn people_count(&self) -> usize {
        self.agents.len()
            + self
                .organisations
                .iter()
                .map(|o| o.members.len())
                .sum::<usize>()
            + self.partners.iter().map(|p| p.members.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Directory {
        Directory {
            agents: vec![Agent {
                address: "alice@helpdesk.example".into(),
                name: "Alice".into(),
                locale: "en".into(),
                time_zone: "Europe/Berlin".into(),
                own_locale: true,
            }],
            organisations: vec![Organisation {
                name: "Acme".into(),
                locale: "en".into(),
                time_zone: "Europe/Berlin".into(),
                domains: vec!["acme.example".into()],
                members: vec![Member {
                    address: "anna@acme.example".into(),
                    name: "Anna".into(),
                    access: Access::Portal,
                    customer_it: false,
                    locale: "en".into(),
                    time_zone: "Europe/Berlin".into(),
                }],
                support_group: vec!["it@acme.example".into()],
                partners: vec![],
                services: BTreeMap::new(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn lookups_ignore_case_and_fall_back_to_the_domain() {
        let d = demo();
        assert_eq!(
            d.person("Alice@HelpDesk.example").unwrap().party,
            Party::Agent
        );
        let anna = d.person(" anna@acme.example ").unwrap();
        assert!(matches!(
            anna.party,
            Party::Customer {
                access: Access::Portal,
                ..
            }
        ));
        assert!(d.person("zoe@acme.example").is_none());
        let zoe = d.person_or_domain_member("zoe@ACME.example").unwrap();
        assert_eq!(zoe.address, "zoe@acme.example");
        assert!(d.person_or_domain_member("mallory@evil.example").is_none());
        assert_eq!(d.agent("alice").unwrap().address, "alice@helpdesk.example");
    }
}
