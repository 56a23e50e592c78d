//! Creates template.yaml's table, bucket, queues and bus on the local AWS (moto), with the same
//! keys, indexes, TTL attribute and redrive policy: the template is the one source of truth.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use super::template::Template;
use crate::error::DependencyError;

#[derive(Debug, Clone)]
pub struct LocalResources {
    pub table: String,
    pub bucket: String,
    pub retry_queue_url: String,
    pub dead_letter_queue_url: String,
    pub event_bus: String,
    /// EventBridge Scheduler: the group, the queue's ARN its schedules target, and a role.
    pub schedule_group: String,
    pub retry_queue_arn: String,
    pub scheduler_role_arn: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("template.yaml: {0}")]
    Template(String),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

fn bad(msg: impl Into<String>) -> LocalError {
    LocalError::Template(msg.into())
}

/// Creates every resource under names starting with `prefix` (unique per test run).
pub async fn create(
    sdk: &SdkConfig,
    template: &Template,
    prefix: &str,
) -> Result<LocalResources, LocalError> {
    let prefix = prefix.to_lowercase();
    let table = create_table(sdk, template, &format!("{prefix}-table")).await?;
    let bucket = create_bucket(sdk, &format!("{prefix}-bucket")).await?;
    let (retry_queue_url, dead_letter_queue_url) = create_queues(sdk, template, &prefix).await?;
    let event_bus = create_bus(sdk, template, &format!("{prefix}-bus")).await?;
    let schedule_group =
        create_schedule_group(sdk, template, &format!("{prefix}-schedules")).await?;
    let retry_queue_arn = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(&retry_queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| DependencyError::aws("sqs", "GetQueueAttributes", &e))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| bad("retry queue has no ARN"))?;
    Ok(LocalResources {
        table,
        bucket,
        retry_queue_url,
        dead_letter_queue_url,
        event_bus,
        schedule_group,
        retry_queue_arn,
        // moto checks no roles: any well-formed ARN.
        scheduler_role_arn: "arn:aws:iam::123456789012:role/frontdesk-local-scheduler".into(),
    })
}

fn single<'a>(template: &'a Template, kind: &str) -> Result<(&'a String, &'a Value), LocalError> {
    let found = template.of_type(kind);
    match found.as_slice() {
        [one] => Ok(*one),
        _ => Err(bad(format!(
            "expected exactly one {kind}, found {}",
            found.len()
        ))),
    }
}

fn key_schema(v: &Value) -> Result<Vec<KeySchemaElement>, LocalError> {
    v.as_array()
        .ok_or_else(|| bad("KeySchema is not a list"))?
        .iter()
        .map(|k| {
            let kind = match k["KeyType"].as_str() {
                Some("HASH") => KeyType::Hash,
                Some("RANGE") => KeyType::Range,
                other => return Err(bad(format!("unknown KeyType {other:?}"))),
            };
            KeySchemaElement::builder()
                .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
                .key_type(kind)
                .build()
                .map_err(|e| bad(e.to_string()))
        })
        .collect()
}

async fn create_table(
    sdk: &SdkConfig,
    template: &Template,
    name: &str,
) -> Result<String, LocalError> {
    let (_, table) = single(template, "AWS::DynamoDB::Table")?;
    let props = &table["Properties"];
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for a in props["AttributeDefinitions"]
        .as_array()
        .ok_or_else(|| bad("AttributeDefinitions missing"))?
    {
        let kind = match a["AttributeType"].as_str() {
            Some("S") => ScalarAttributeType::S,
            Some("N") => ScalarAttributeType::N,
            Some("B") => ScalarAttributeType::B,
            other => return Err(bad(format!("unknown AttributeType {other:?}"))),
        };
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(a["AttributeName"].as_str().unwrap_or_default())
                .attribute_type(kind)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        );
    }
    req = req.set_key_schema(Some(key_schema(&props["KeySchema"])?));
    for gsi in props["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let projection = match gsi
            .pointer("/Projection/ProjectionType")
            .and_then(Value::as_str)
        {
            Some("KEYS_ONLY") => ProjectionType::KeysOnly,
            Some("INCLUDE") => ProjectionType::Include,
            _ => ProjectionType::All,
        };
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(gsi["IndexName"].as_str().unwrap_or_default())
                .set_key_schema(Some(key_schema(&gsi["KeySchema"])?))
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .map_err(|e| bad(e.to_string()))?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(DependencyError::aws("dynamodb", "CreateTable", &e).into()),
    }
    if let Some(ttl) = props
        .pointer("/TimeToLiveSpecification/AttributeName")
        .and_then(Value::as_str)
    {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ttl)
                    .enabled(true)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| DependencyError::aws("dynamodb", "UpdateTimeToLive", &e))?;
    }
    Ok(name.to_string())
}

async fn create_bucket(sdk: &SdkConfig, name: &str) -> Result<String, LocalError> {
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    let mut req = client.create_bucket().bucket(name);
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    if !region.is_empty() && region != "us-east-1" {
        req = req.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => Ok(name.to_string()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
        {
            Ok(name.to_string())
        }
        Err(e) => Err(DependencyError::aws("s3", "CreateBucket", &e).into()),
    }
}

fn queue_attributes(props: &Value) -> Vec<(QueueAttributeName, String)> {
    let mut out = Vec::new();
    for (name, attr) in [
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        (
            "MessageRetentionPeriod",
            QueueAttributeName::MessageRetentionPeriod,
        ),
        ("DelaySeconds", QueueAttributeName::DelaySeconds),
    ] {
        if let Some(v) = props.get(name).and_then(Value::as_i64) {
            out.push((attr, v.to_string()));
        }
    }
    out
}

async fn create_queues(
    sdk: &SdkConfig,
    template: &Template,
    prefix: &str,
) -> Result<(String, String), LocalError> {
    let queues = template.of_type("AWS::SQS::Queue");
    let (retry_id, retry) = queues
        .iter()
        .find(|(_, q)| q.pointer("/Properties/RedrivePolicy").is_some())
        .ok_or_else(|| bad("no queue with a RedrivePolicy (the retry queue)"))?;
    let redrive = &retry["Properties"]["RedrivePolicy"];
    let dlq_id = redrive
        .pointer("/deadLetterTargetArn/Fn::GetAtt/0")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(format!(
                "{retry_id}: deadLetterTargetArn must be !GetAtt <Queue>.Arn"
            ))
        })?;
    let dlq = template
        .resource(dlq_id)
        .ok_or_else(|| bad(format!("no resource {dlq_id}")))?;
    let max_receive = redrive["maxReceiveCount"]
        .as_i64()
        .ok_or_else(|| bad("maxReceiveCount missing"))?;

    let client = aws_sdk_sqs::Client::new(sdk);
    let create = |name: String, attrs: Vec<(QueueAttributeName, String)>| {
        let client = client.clone();
        async move {
            let mut req = client.create_queue().queue_name(name);
            for (k, v) in attrs {
                req = req.attributes(k, v);
            }
            let out = req
                .send()
                .await
                .map_err(|e| DependencyError::aws("sqs", "CreateQueue", &e))?;
            Ok::<String, LocalError>(out.queue_url.unwrap_or_default())
        }
    };
    let dlq_url = create(
        format!("{prefix}-{}", dlq_id.to_lowercase()),
        queue_attributes(&dlq["Properties"]),
    )
    .await?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| DependencyError::aws("sqs", "GetQueueAttributes", &e))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| bad("dead-letter queue has no ARN"))?;
    let mut attrs = queue_attributes(&retry["Properties"]);
    attrs.push((
        QueueAttributeName::RedrivePolicy,
        serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive })
            .to_string(),
    ));
    let retry_url = create(format!("{prefix}-{}", retry_id.to_lowercase()), attrs).await?;
    Ok((retry_url, dlq_url))
}

async fn create_schedule_group(
    sdk: &SdkConfig,
    template: &Template,
    name: &str,
) -> Result<String, LocalError> {
    single(template, "AWS::Scheduler::ScheduleGroup")?;
    let client = aws_sdk_scheduler::Client::new(sdk);
    match client.create_schedule_group().name(name).send().await {
        Ok(_) => Ok(name.to_string()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conflict_exception()) =>
        {
            Ok(name.to_string())
        }
        Err(e) => Err(DependencyError::aws("scheduler", "CreateScheduleGroup", &e).into()),
    }
}

async fn create_bus(
    sdk: &SdkConfig,
    template: &Template,
    name: &str,
) -> Result<String, LocalError> {
    single(template, "AWS::Events::EventBus")?;
    let client = aws_sdk_eventbridge::Client::new(sdk);
    match client.create_event_bus().name(name).send().await {
        Ok(_) => Ok(name.to_string()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_already_exists_exception()) =>
        {
            Ok(name.to_string())
        }
        Err(e) => Err(DependencyError::aws("eventbridge", "CreateEventBus", &e).into()),
    }
}
