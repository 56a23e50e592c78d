//! Business metrics as CloudWatch Embedded Metric Format: one JSON line on stdout, which Lambda
//! ships to CloudWatch Logs and CloudWatch turns into a metric. No API call, no extra latency.
//! Outside Lambda the line is not printed (it would only clutter local output).

use std::sync::OnceLock;

pub const NAMESPACE: &str = "Frontdesk";

fn in_lambda() -> bool {
    static IN_LAMBDA: OnceLock<bool> = OnceLock::new();
    *IN_LAMBDA.get_or_init(|| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some())
}

/// The EMF document for one count, dimensioned by tenant.
pub fn emf_line(metric: &str, value: u64, tenant: &str, now_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["tenant"]],
                "Metrics": [{ "Name": metric, "Unit": "Count" }],
            }],
        },
        "tenant": tenant,
        metric: value,
    })
    .to_string()
}

/// Counts `value` of `metric` for the tenant.
pub fn count(metric: &str, value: u64, tenant: &str) {
    if in_lambda() {
        println!(
            "{}",
            emf_line(
                metric,
                value,
                tenant,
                jiff::Timestamp::now().as_millisecond()
            )
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_valid_emf() {
        let v: serde_json::Value =
            serde_json::from_str(&emf_line("MessagesFailed", 1, "demo", 7)).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "MessagesFailed"
        );
        assert_eq!(v["MessagesFailed"], 1);
        assert_eq!(v["tenant"], "demo");
    }
}
