//! Quality assurance: the tenant's rules (data), applied to calls (pure), the scan that runs
//! them every 15 minutes, and the flags reviewers resolve.
//!
//! - [`rules`]: the rule file, `prompts/<tenant>/assertions.toml`, and its validation;
//! - [`phrases`]: word-level phrase patterns;
//! - [`check`]: one call's findings, the same code for the scan, replay and tests;
//! - [`scan`]: the scheduled use case: calls since the watermark → findings → flags.

pub mod check;
pub mod phrases;
pub mod replay;
pub mod rules;
pub mod scan;

pub use check::{check, BusinessFacts, Evidence, Finding};
pub use rules::{Rule, RuleKind, RuleSet, RulesError, Severity};
