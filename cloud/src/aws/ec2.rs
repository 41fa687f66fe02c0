//! EC2's operations (the ec2 protocol): authorised here, run by [`netlab_ec2::Ec2`], which writes
//! the XML. The IAM resource is the one AWS authorises the action on: the network interface's
//! ARN for calls naming one (the VPC CNI's policy allows `ec2:CreateTags` only on
//! `network-interface/*`), `*` for the rest, as EC2's describe calls are.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use netlab_aws::{AwsError, ProtocolError};
use netlab_ec2::{Action, Params};

use super::{Account, Call, authorize};

/// Runs one EC2 call.
pub fn handle(account: &mut Account, call: &Call<'_>) -> Result<Response<Bytes>, AwsError> {
    let Some(action) = Action::from_name(call.action) else {
        return Err(
            ProtocolError::InvalidAction { action: call.action.to_string() }.to_aws_error(&call.protocol)
        );
    };
    let params = Params::from_pairs(call.params()?.iter());
    let resource = resource(account, &params);
    authorize(account, call, &action.iam_action(), &resource)?;
    let body = account
        .ec2
        .call(action, &params, call.request_id)
        .map_err(|e| AwsError::sender(e.code, e.message))?;
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml;charset=UTF-8"));
    Ok(response)
}

/// The resource `call` is authorised on.
fn resource(account: &Account, params: &Params) -> String {
    let eni = params
        .get("NetworkInterfaceId")
        .or_else(|| params.get("ResourceId.1").filter(|id| id.starts_with("eni-")));
    match eni {
        Some(id) => {
            format!("arn:aws:ec2:{}:{}:network-interface/{id}", account.ec2.region, account.ec2.account_id)
        }
        None => "*".to_string(),
    }
}
