//! Writing status: conditions with stable transition times, applied with
//! server-side apply to the status subresource only.

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Resource,
    api::{Patch, PatchParams},
};
use serde::Serialize;

use crate::{api::FIELD_MANAGER, policy::lifecycle::ConditionState};

/// Turns computed conditions into API conditions, keeping each one's
/// `lastTransitionTime` when its status did not change.
pub(super) fn conditions(
    computed: &[ConditionState],
    previous: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    computed
        .iter()
        .map(|state| {
            let status = if state.status { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|c| c.type_ == state.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: state.type_.into(),
                status: status.into(),
                reason: state.reason.clone(),
                message: state.message.clone(),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

/// The condition of `type_`, if present.
pub(super) fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Applies `status` to the status subresource of `name`, as the operator's
/// field manager. Only the fields given are owned; the spec is never sent.
pub(super) async fn apply<K>(
    api: &Api<K>,
    name: &str,
    status: impl Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}
