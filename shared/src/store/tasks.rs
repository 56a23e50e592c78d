//! Work for people: callback tasks for the owner, and the notes the agent logs about a call.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::{from_value, keys, s, AttributeMap, Created, Store};
use crate::error::DependencyError;
use crate::ids::ConversationId;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CallbackTask {
    pub task_id: String,
    pub kind: String,
    /// `open` until someone calls back.
    pub status: String,
    /// Promised by (UTC, RFC 3339).
    pub due: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CallNote {
    pub note_id: String,
    pub conversation_id: String,
    pub outcome: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub logged_at: String,
}

impl Store {
    /// Creates the task unless one with its id exists; returns the task as stored.
    pub async fn create_task(&self, task: &CallbackTask) -> Result<CallbackTask, DependencyError> {
        let (pk, sk) = keys::task(self.tenant(), &task.task_id);
        let AttributeMap(mut item) = AttributeMap::of(task)?;
        item.insert(keys::PK.into(), s(&pk));
        item.insert(keys::SK.into(), s(&sk));
        item.insert(
            keys::GSI1PK.into(),
            s(keys::tasks_index(self.tenant(), &task.status)),
        );
        item.insert(
            keys::GSI1SK.into(),
            s(format!("{}#{}", task.due, task.task_id)),
        );
        match self.put_new_or_read(item).await? {
            // Made before (a repeat): the first one stands.
            Created::Existing(Some(first)) => from_value(AttributeValue::M(first)),
            _ => Ok(task.clone()),
        }
    }

    pub async fn get_task(&self, id: &str) -> Result<Option<CallbackTask>, DependencyError> {
        let item = self.get(keys::task(self.tenant(), id), "GetItem").await?;
        item.map(|i| from_value(AttributeValue::M(i))).transpose()
    }

    /// Records a note once (its id is derived from its content: a retry writes nothing new).
    /// Returns whether it was new.
    pub async fn save_call_note(
        &self,
        conversation: &ConversationId,
        note: &CallNote,
    ) -> Result<bool, DependencyError> {
        let (pk, sk) = keys::call_note(self.tenant(), conversation, &note.note_id);
        let AttributeMap(mut item) = AttributeMap::of(note)?;
        item.insert(keys::PK.into(), s(pk));
        item.insert(keys::SK.into(), s(sk));
        self.put_if_absent(item).await
    }
}
