//! The Jobs pages: the live list, and one job with its progress, feed and items.
//!
//! Both pages render the present state on the server (they work without JavaScript and survive
//! a reload mid-run), then `assets/jobs.js` keeps them current from the streams of
//! `super::live`, with the session cookie and the page's project.

use super::api::{item_list, list_jobs_for, ItemList, JobDetail, JobList, JobView, ListQuery};
use crate::auth::job_access::JobAccess;
use crate::http::{AppError, PageError};
use crate::state::AppState;
use crate::web::{render, searchable, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use vigie_core::{JobStatus, Project};

/// Rows per page of the jobs list and of a job's items.
const PAGE: u32 = 50;

/// The offset of the page before `offset`, if it is not the first.
fn prev_page(offset: u32) -> Option<u32> {
    (offset > 0).then(|| offset.saturating_sub(PAGE))
}

/// The offset of the page after `offset`, if `matching` rows reach it.
fn next_page(offset: u32, matching: u64) -> Option<u32> {
    let next = offset + PAGE;
    (u64::from(next) < matching).then_some(next)
}

fn page_access(chrome: &Chrome) -> Result<JobAccess, AppError> {
    let project = chrome.project.clone().ok_or_else(|| {
        AppError::NotFound("no project yet: create one in Settings → Projects".into())
    })?;
    Ok(JobAccess {
        project,
        only_job: None,
    })
}

/// The filters the Jobs page offers beyond its origin tabs, by query name.
fn page_filters(q: &ListQuery) -> [(&'static str, Option<&String>); 5] {
    [
        ("status", q.status.as_ref()),
        ("kind", q.kind.as_ref()),
        ("application", q.application.as_ref()),
        ("launched_by", q.launched_by.as_ref()),
        ("q", q.q.as_ref()),
    ]
}

/// `key=value&…` of the non-empty filters, for links and the live stream.
fn query_string(pairs: &[(&str, Option<&String>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.trim().is_empty()).map(|v| (k, v)))
        .map(|(k, v)| format!("{k}={}", crate::web::format::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Template)]
#[template(path = "jobs/jobs.html")]
struct JobsPage {
    chrome: Chrome,
    project: Project,
    list: JobList,
    /// Why the filters could not be read (the table is then empty).
    problem: Option<String>,
    query: ListQuery,
    statuses: [JobStatus; 6],
    /// The filters as a query string (no paging), for the stream and the pager.
    filters: String,
    /// The origin tabs: (`origin=` value, label, jobs of that origin).
    origins: Vec<(&'static str, &'static str, u64)>,
    base_url: String,
}

impl JobsPage {
    fn origin(&self) -> &str {
        self.query.origin.as_deref().unwrap_or("reported")
    }
    fn is_origin(&self, origin: &str) -> bool {
        self.origin() == origin
    }
    fn selected(&self, status: &JobStatus) -> bool {
        self.query.status.as_deref() == Some(status.as_str())
    }
    fn field<'a>(&self, value: &'a Option<String>) -> &'a str {
        value.as_deref().unwrap_or("")
    }
    fn prev_offset(&self) -> Option<u32> {
        prev_page(self.list.offset)
    }
    fn next_offset(&self) -> Option<u32> {
        next_page(self.list.offset, self.list.total)
    }
    fn last_shown(&self) -> u64 {
        u64::from(self.list.offset) + self.list.jobs.len() as u64
    }
    /// Whether a filter beyond the origin tab is set.
    fn filtered(&self) -> bool {
        !query_string(&page_filters(&self.query)).is_empty()
    }
    fn dsn_key(&self) -> &str {
        self.project.public_key.as_str()
    }
}

pub async fn list(
    State(state): State<AppState>,
    request: PageRequest,
    Query(mut query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "jobs").await?;
    let access = page_access(&chrome)?;
    query.limit = Some(PAGE);
    // The work the application reported, unless Celery tasks or monitor runs are asked for.
    query.origin = Some(query.origin.take().unwrap_or_else(|| "reported".into()));
    let (list, problem) = match searchable(query.jobs(&access))? {
        Ok(filter) => (list_jobs_for(&state, &filter).await?, None),
        Err(why) => (JobList::default(), Some(why)),
    };
    let mut origins = Vec::new();
    for (origin, label) in [
        ("reported", "Reported"),
        ("celery", "Celery tasks"),
        ("monitor", "Monitor runs"),
        ("all", "All"),
    ] {
        let mut count = query.clone();
        count.origin = Some(origin.into());
        count.limit = Some(1);
        count.offset = None;
        let total = match count.jobs(&access) {
            Ok(filter) => state.store.list_jobs(&filter).await?.total,
            Err(_) => 0, // said once, by `problem`
        };
        origins.push((origin, label, total));
    }
    let mut pairs = vec![("origin", query.origin.as_ref())];
    pairs.extend(page_filters(&query));
    let filters = query_string(&pairs);
    let page = JobsPage {
        project: access.project,
        list,
        problem,
        query,
        statuses: JobStatus::ALL,
        filters,
        origins,
        base_url: state.base_url.to_string(),
        chrome,
    };
    render(&page, &page.chrome)
}

#[derive(Template)]
#[template(path = "jobs/job.html")]
struct JobPage {
    chrome: Chrome,
    project: Project,
    /// The newest traces begun for this job.
    traces: crate::web::related::JobTraces,
    detail: JobDetail,
    items: ItemList,
    /// Why the items table's filters could not be read (it is then empty).
    item_problem: Option<String>,
    item_status: String,
    item_q: String,
    /// `status` and `q` of the items table as a query string (no paging).
    item_filters: String,
    base_url: String,
    /// The issues its events belong to.
    issues: Vec<crate::web::related::RelatedIssue>,
    /// Its Celery task's or monitor's page.
    origin: Option<(String, &'static str)>,
    /// Web pages refused its progress for their origin.
    refusals: Vec<crate::metrics::OriginRefusal>,
}

impl JobPage {
    fn logs_link(&self) -> String {
        crate::web::related::logs_of_job(&self.job().id)
    }
    fn job(&self) -> &JobView {
        &self.detail.job
    }
    fn percent(&self) -> f64 {
        self.job().percent.unwrap_or(0.0)
    }
    fn prev_offset(&self) -> Option<u32> {
        prev_page(self.items.offset)
    }
    fn next_offset(&self) -> Option<u32> {
        // The counts are of the filtered items already.
        next_page(self.items.offset, self.items.total.max(0) as u64)
    }
    /// New items are added live only to the first page of the unfiltered table.
    fn live_items(&self) -> bool {
        self.items.offset == 0 && self.item_filters.is_empty()
    }
}

pub async fn show(
    State(state): State<AppState>,
    request: PageRequest,
    Path(id): Path<String>,
    Query(mut query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "jobs").await?;
    let access = page_access(&chrome)?;
    let job = state
        .store
        .job(access.project.id, &id)
        .await?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no job {id:?} in project {:?}; pick its project in the switcher",
                access.project.name
            ))
        })?;
    let detail = JobDetail::snapshot(&state, &job).await?;
    query.job = Some(job.id.clone());
    query.limit = Some(PAGE);
    let (items, item_problem) = match searchable(query.items(&access))? {
        Ok(filter) => (item_list(&state, &filter).await?, None),
        Err(why) => (ItemList::default(), Some(why)),
    };
    let issues = crate::web::related::issues_of_job(&state, access.project.id, &job.id).await?;
    let origin = crate::web::related::origin_link(job.kind.as_deref(), &job.id, &job.name);
    let traces = crate::web::related::traces_of_job(&state, access.project.id, &job.id).await?;
    let page = JobPage {
        traces,
        refusals: state.origin_refusals.of(access.project.id, &job.id),
        issues,
        origin,
        project: access.project,
        detail,
        items,
        item_problem,
        item_filters: query_string(&[("status", query.status.as_ref()), ("q", query.q.as_ref())]),
        item_status: query.status.clone().unwrap_or_default(),
        item_q: query.q.clone().unwrap_or_default(),
        base_url: state.base_url.to_string(),
        chrome,
    };
    render(&page, &page.chrome)
}

/// An item's `fields` as logfmt `key=value` pairs, by name (strings as they are, anything else
/// as JSON), shown under its name as log fields are shown after a message.
pub fn fields_line(fields: &Option<Box<serde_json::value::RawValue>>) -> String {
    let Some(raw) = fields else {
        return String::new();
    };
    match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(serde_json::Value::Object(map)) => {
            let pairs: Vec<(&str, String)> = map
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k.as_str(), s.clone()),
                    other => (k.as_str(), other.to_string()),
                })
                .collect();
            crate::web::format::logfmt(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        }
        _ => raw.get().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_a_query_string() {
        let (a, b) = ("running".to_string(), "a b".to_string());
        assert_eq!(
            query_string(&[("status", Some(&a)), ("kind", None), ("q", Some(&b))]),
            "status=running&q=a%20b"
        );
    }
}
