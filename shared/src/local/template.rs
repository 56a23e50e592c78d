//! Reads template.yaml: CloudFormation's short tags (`!Ref`, `!GetAtt`, `!Sub`) become their
//! long JSON forms, so the rest works on plain JSON.

use std::path::Path;

use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct TemplateError {
    pub path: String,
    pub problem: String,
}

#[derive(Debug, Clone)]
pub struct Template(pub Value);

/// One HTTP route a function serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub function: String,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let fail = |problem: String| TemplateError {
            path: path.display().to_string(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let yaml: Yaml = serde_yaml_ng::from_str(&text).map_err(|e| fail(e.to_string()))?;
        Ok(Self(to_json(yaml)))
    }

    pub fn resources(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.iter())
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.0.get("Resources")?.get(logical_id)
    }

    /// Logical ids of resources of one type, in file order.
    pub fn of_type(&self, kind: &str) -> Vec<(&String, &Value)> {
        self.resources()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .collect()
    }

    /// Every HttpApi route of every function (the function named by its binary).
    pub fn routes(&self) -> Vec<Route> {
        let mut routes = Vec::new();
        for (id, f) in self.of_type("AWS::Serverless::Function") {
            let function = f
                .pointer("/Metadata/BuildProperties/Binary")
                .and_then(Value::as_str)
                .unwrap_or(id)
                .to_string();
            let events = f.pointer("/Properties/Events").and_then(Value::as_object);
            for event in events.into_iter().flat_map(|e| e.values()) {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let props = &event["Properties"];
                routes.push(Route {
                    method: props["Method"].as_str().unwrap_or("").to_uppercase(),
                    path: props["Path"].as_str().unwrap_or("").to_string(),
                    function: function.clone(),
                });
            }
        }
        routes.sort();
        routes
    }
}

fn to_json(yaml: Yaml) -> Value {
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(f) = n.as_f64() {
                Value::from(f)
            } else {
                Value::Null
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Yaml::String(s) => s,
                    other => serde_yaml_ng::to_string(&other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                out.insert(key, to_json(v));
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(tagged.value);
            let (key, inner) = match name {
                "Ref" | "Condition" => (name.to_string(), inner),
                // `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`.
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (a, b) = s.split_once('.').unwrap_or((&s, ""));
                        ("Fn::GetAtt".into(), Value::Array(vec![a.into(), b.into()]))
                    }
                    other => ("Fn::GetAtt".into(), other),
                },
                other => (format!("Fn::{other}"), inner),
            };
            let mut m = Map::new();
            m.insert(key, inner);
            Value::Object(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tags_become_long_forms() {
        let yaml: Yaml = serde_yaml_ng::from_str(
            "a: !Ref X\nb: !GetAtt Q.Arn\nc: !Sub \"x-${Y}\"\nd: !Not [!Equals [1, 2]]",
        )
        .unwrap();
        let v = to_json(yaml);
        assert_eq!(v["a"], serde_json::json!({"Ref": "X"}));
        assert_eq!(v["b"], serde_json::json!({"Fn::GetAtt": ["Q", "Arn"]}));
        assert_eq!(v["c"], serde_json::json!({"Fn::Sub": "x-${Y}"}));
        assert_eq!(
            v["d"],
            serde_json::json!({"Fn::Not": [{"Fn::Equals": [1, 2]}]})
        );
    }
}
