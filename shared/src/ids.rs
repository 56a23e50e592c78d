//! Identifiers that cannot hold invalid values. They end up inside DynamoDB keys and S3 keys,
//! so only a safe alphabet is accepted.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be 1 to {max} characters of letters, digits, '-' or '_'")]
pub struct IdError {
    what: &'static str,
    max: usize,
}

fn check(what: &'static str, max: usize, raw: &str) -> Result<(), IdError> {
    let ok = !raw.is_empty()
        && raw.len() <= max
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(IdError { what, max })
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check($what, $max, raw)?;
                Ok(Self(raw.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                check($what, $max, &value)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> Self {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The business a stack serves (`demo`, `bright-smile`).
    TenantId, "tenant id", 64
);
id_type!(
    /// ElevenLabs' conversation id (`conv_…`): the idempotency key of everything a call causes.
    ConversationId, "conversation id", 128
);
id_type!(
    /// ElevenLabs agent id (`agent_…`).
    AgentId, "agent id", 128
);
id_type!(
    /// One lead: an enquiry from one person, open until it is won or lost.
    LeadId, "lead id", 64
);

/// Whether `raw` is usable inside keys: 1 to 64 letters, digits, '-' or '_'.
pub fn is_safe_id(raw: &str) -> bool {
    check("id", 64, raw).is_ok()
}

/// A short id derived from its inputs, so the same inputs always give the same id: the basis of
/// idempotency for records created while processing a webhook.
pub fn derived_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("{prefix}_{}", &hex::encode(h.finalize())[..20])
}

impl LeadId {
    /// The lead first opened by a conversation.
    pub fn for_conversation(tenant: &TenantId, conversation: &ConversationId) -> Self {
        Self(derived_id(
            "lead",
            &[tenant.as_str(), conversation.as_str()],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_safe_alphabet_only() {
        assert!(ConversationId::parse("conv_0201k7bq9w5hf3srd1y7a4mzq6ke").is_ok());
        assert!(TenantId::parse("bright-smile").is_ok());
        for bad in ["", "a#b", "a/b", "a b", "ünï", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derived_id("lead", &["demo", "conv_1"]);
        assert_eq!(a, derived_id("lead", &["demo", "conv_1"]));
        assert_ne!(a, derived_id("lead", &["demo", "conv_2"]));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(derived_id("x", &["ab", "c"]), derived_id("x", &["a", "bc"]));
        assert!(LeadId::parse(&a).is_ok());
    }
}
