//! Salesforce Outbound Messages (reference §1.6): a Flow or workflow rule POSTs a SOAP 1.1
//! `notifications` envelope to the integration's hook URL; the answer must be a SOAP
//! `notificationsResponse` with `<Ack>true</Ack>`, or Salesforce retries for up to 24 hours.
//!
//! Threat model: anyone on the internet can POST to the hook URL, and outbound messages carry no
//! signature. A message is accepted only when (1) the hook URL's last path segment is the secret
//! field `outbound_token`, compared by the host in constant time (`verify::secret_matches`), so
//! the URL configured in Salesforce is itself the credential, and (2) when `organization_id` is
//! set, the envelope's `OrganizationId` is that org. Anything else is `unauthorized` and queues
//! nothing.
//!
//! Messages are at-least-once and may arrive out of order, and they carry only the fields the
//! admin selected, so an accepted message does not name files: it asks the host for an
//! incremental sync (`resync`), whose `SystemModstamp` query lists exactly the files that changed
//! since the last mark. Duplicates are harmless (the host analyses a file version once) and are
//! still acknowledged, so Salesforce stops retrying.

use proofpix_sdk::prelude::*;

/// The acknowledgement Salesforce waits for.
pub const ACK: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
    r#"<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">"#,
    r#"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#
);

/// Verifies and acknowledges one outbound message.
pub fn handle(request: &InboundRequest) -> Result<EventOutcome, PluginError> {
    let token = request
        .path
        .trim_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    if token.is_empty() || !verify::secret_matches("outbound_token", token) {
        return Err(PluginError::unauthorized(
            "an outbound message to a hook URL without this integration's outbound token; in \
             Salesforce, set the outbound message's Endpoint URL to /hooks/<integration>/<token> \
             with the token stored in the integration's `outbound_token` field",
        ));
    }
    let body = std::str::from_utf8(&request.body)
        .map_err(|_| PluginError::fatal("an outbound message whose body is not UTF-8 XML"))?;
    if !body.contains("notifications") {
        return Err(PluginError::fatal(
            "a request to the Salesforce hook URL that is not an outbound message (no \
             `notifications` element)",
        ));
    }
    let org = element(body, "OrganizationId").unwrap_or_default();
    if let Some(expected) = config::get("organization_id").filter(|v| !v.trim().is_empty())
        && !same_org(expected.trim(), org.trim())
    {
        return Err(PluginError::unauthorized(format!(
            "an outbound message from organization {org:?}, not the configured {expected:?}"
        )));
    }
    let count = body.matches("<Notification>").count();
    log::log(
        log::Level::Info,
        "Salesforce outbound message acknowledged; running an incremental sync",
        &[("notifications", &count.to_string())],
    );
    Ok(EventOutcome {
        response: InboundResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/xml; charset=utf-8".into())],
            body: ACK.as_bytes().to_vec(),
        },
        changed: Vec::new(),
        removed: Vec::new(),
        resync: true,
    })
}

/// Organization ids compare on their first 15 characters (case-sensitive); the 18-character
/// form adds a checksum suffix.
fn same_org(a: &str, b: &str) -> bool {
    a.len() >= 15 && b.len() >= 15 && a.get(..15) == b.get(..15)
}

/// The text of the first element named `name`, with or without a namespace prefix.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let end = rest.find('>')?;
        let tag = &rest[..end];
        let local = tag.split_whitespace().next().unwrap_or_default();
        let local = local.rsplit(':').next().unwrap_or(local);
        if local == name && !tag.starts_with('/') && !tag.ends_with('/') {
            let content = &rest[end + 1..];
            let close = content.find("</")?;
            return Some(&content[..close]);
        }
        rest = &rest[end + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5g000004ABCDEAZ</OrganizationId>
   <ActionId>04k5g000000XYZ1AAB</ActionId>
   <SessionId xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>
   <Notification>
    <Id>04l5g00000ABCDEAA1</Id>
    <sObject xsi:type="sf:ContentVersion" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0685g00000AbCdEAAV</sf:Id>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

    #[test]
    fn elements_are_found_with_or_without_a_prefix() {
        assert_eq!(
            element(MESSAGE, "OrganizationId"),
            Some("00D5g000004ABCDEAZ")
        );
        assert_eq!(element(MESSAGE, "Id"), Some("04l5g00000ABCDEAA1"));
        assert_eq!(element(MESSAGE, "Missing"), None);
        assert_eq!(element("<a><b>", "b"), None);
    }

    #[test]
    fn organization_ids_match_in_15_and_18_character_forms() {
        assert!(same_org("00D5g000004ABCD", "00D5g000004ABCDEAZ"));
        assert!(!same_org("00D5g000004ABCE", "00D5g000004ABCDEAZ"));
        assert!(!same_org("", ""));
    }

    #[test]
    fn the_ack_is_the_soap_response_salesforce_waits_for() {
        assert!(ACK.contains("<Ack>true</Ack>"));
        assert!(ACK.contains("http://soap.sforce.com/2005/09/outbound"));
    }
}
