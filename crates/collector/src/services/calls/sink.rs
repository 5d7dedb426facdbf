//! The PBX adapters' [`CallSink`], backed by storage and attribution.

use ringsource_core::call::CallEvent;

use super::{CallSink, CallsError, CallsService, RecordOutcome, SinkError};
use crate::pbx::Delivery;
use crate::storage::calls::RecordError;

impl CallSink for CallsService {
    fn record(&self, site: &str, delivery: Option<&Delivery>, event: CallEvent) -> Result<RecordOutcome, SinkError> {
        match self.record_delivery(site, delivery, &event) {
            Ok(r) if r.new_event => Ok(RecordOutcome::New),
            Ok(_) => Ok(RecordOutcome::Duplicate),
            // A retry cannot fix either: the PBX must be told, not asked to resend.
            Err(e @ (CallsError::UnknownSite(_) | CallsError::Record(RecordError::OtherSite { .. }))) => {
                Err(SinkError::Conflict(e.to_string()))
            }
            Err(CallsError::Record(RecordError::Storage(e)) | CallsError::Storage(e)) => Err(SinkError::Storage(e)),
            Err(e @ (CallsError::UnknownCall(_) | CallsError::UnknownPromoCode { .. })) => {
                Err(SinkError::Conflict(e.to_string()))
            }
        }
    }
}
