//! Standing in for EventBridge Scheduler locally: moto stores schedules but never fires them,
//! so `make dev` (every 30 seconds) and the tests fire the due ones: their job onto the queue,
//! then the schedule deleted, as `ActionAfterCompletion: DELETE` does.

use crate::deps::Deps;
use crate::error::DependencyError;
use crate::schedules::Scheduled;

/// Fires every schedule due by the clock's now. Returns what fired.
pub async fn fire_due(deps: &Deps) -> Result<Vec<Scheduled>, DependencyError> {
    let Some(schedules) = &deps.schedules else {
        return Ok(Vec::new());
    };
    let now = deps.now();
    let mut fired = Vec::new();
    for due in schedules.list().await?.into_iter().filter(|s| s.at <= now) {
        deps.queue
            .enqueue(&due.job, std::time::Duration::ZERO)
            .await?;
        schedules.delete(&due.name).await?;
        fired.push(due);
    }
    Ok(fired)
}
