//! Alert channels and rules written in the configuration file (`[[alerts.channels]]`,
//! `[[alerts.rules]]`), put into the database when the server starts.
//!
//! The file is the source of truth for what it names: a channel or rule of the same name is
//! replaced (a rule keeps the mute set in the UI), and a channel or rule that came from the
//! file and is no longer in it is deleted. What was made in the UI or the API is left alone.
//! The file was checked when it was read (targets, rule kinds, channel names); a project the
//! database does not know is reported and skipped, so the server still starts and the project
//! can be created.

use super::api::save_rule;
use crate::config::AlertsConfig;
use crate::http::AppError;
use crate::state::AppState;
use std::collections::HashMap;
use vigie_core::Timestamp;
use vigie_store::NewRule;

/// Writes the configured channels and rules; answers how many of each were applied.
pub async fn apply(state: &AppState, alerts: &AlertsConfig) -> Result<(usize, usize), AppError> {
    let projects: HashMap<String, _> = state
        .store
        .list_projects()
        .await?
        .into_iter()
        .map(|p| (p.name.clone(), p.id))
        .collect();
    let named: std::collections::BTreeSet<&String> = alerts
        .channels
        .iter()
        .map(|c| &c.project)
        .chain(alerts.rules.iter().map(|r| &r.project))
        .collect();
    for name in named {
        if !projects.contains_key(name) {
            tracing::warn!(
                project = %name,
                "the configuration file has alerts for project \"{name}\", which does not exist; skipped"
            );
        }
    }
    let (mut channels, mut rules) = (0, 0);
    for (name, &project) in &projects {
        let mut ids = HashMap::new();
        for channel in alerts.channels.iter().filter(|c| &c.project == name) {
            let saved = state
                .store
                .create_channel(
                    project,
                    &channel.name,
                    &channel.target,
                    true,
                    Timestamp::now(),
                )
                .await?;
            ids.insert(saved.name.clone(), saved.id);
            channels += 1;
        }
        for rule in alerts.rules.iter().filter(|r| &r.project == name) {
            let new = NewRule {
                name: rule.name.clone(),
                kind: rule.when.clone(),
                environment: rule.environment.clone(),
                channels: rule
                    .channels
                    .iter()
                    .filter_map(|c| ids.get(c).copied())
                    .collect(),
                cooldown_s: rule.cooldown_s,
                renotify_s: rule.renotify_s,
                from_config: true,
            };
            save_rule(state, project, &new).await?;
            rules += 1;
        }
        // What an earlier file had and this one does not.
        for old in state.store.list_rules(project).await? {
            let kept = alerts
                .rules
                .iter()
                .any(|r| &r.project == name && r.name == old.name);
            if old.from_config && !kept {
                super::api::delete_rule(state, project, old.id).await?;
            }
        }
        for old in state.store.list_channels(project).await? {
            if old.from_config && !ids.contains_key(&old.name) {
                state.store.delete_channel(project, old.id).await?;
            }
        }
    }
    Ok((channels, rules))
}
