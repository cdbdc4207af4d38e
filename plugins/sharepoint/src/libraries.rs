//! Resolving the configured sites and libraries to Graph ids: site id, drive id, list id.
//!
//! This is where a misconfiguration shows, so every failure names the field and what to write:
//! an unknown site, a site the app may not read, a library name no site has (with the names
//! they do have).

use proofpix_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::graph::{self, GraphError};
use crate::settings::{LibraryRef, Settings, SiteRef, field};

/// One document library to list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Library {
    /// Graph site id.
    pub site: String,
    /// Drive id.
    pub drive: String,
    /// List id (for the list-item column updates).
    pub list: String,
    /// "Site / Library", for people.
    pub label: String,
    /// The next link to call: a nextLink inside a run, a deltaLink between runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// A resolved site.
#[derive(Debug, Clone)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub configured: String,
}

/// Looks up one configured site.
///
/// # Errors
/// `invalid-config` on `sites` for an unknown site or one the app may not read.
pub fn resolve_site(settings: &Settings, site: &SiteRef) -> Result<Site, PluginError> {
    let what = format!("looking up site {}", site.display());
    let resp = graph::get(&site.url(&settings.graph))?;
    if !resp.is_success() {
        let e = GraphError::from_response(&resp);
        return Err(match e.status {
            400 | 404 => PluginError::invalid_config(
                Some(field::SITES),
                format!(
                    "SharePoint has no site {} (Graph: {}). Write the site's address without https://, like contoso.sharepoint.com/sites/Marketing, or its id, and check that the site exists",
                    site.display(),
                    if e.code().is_empty() {
                        "HTTP 404"
                    } else {
                        e.code()
                    }
                ),
            ),
            403 => PluginError::invalid_config(
                Some(field::SITES),
                format!(
                    "the app may not read site {} (Graph: {} {}). Grant the app registration's Sites.Selected permission on this site (write access, for the result columns), or give it Sites.ReadWrite.All; an administrator must consent",
                    site.display(),
                    e.status,
                    e.code()
                ),
            ),
            _ => e.into_plugin_error(&what),
        });
    }
    let v = graph::parse_json(&resp, &what)?;
    let id = v["id"].as_str().unwrap_or_default().to_string();
    if id.is_empty() {
        return Err(PluginError::transient(format!(
            "Graph answered {what} without a site id"
        )));
    }
    let name = v["displayName"]
        .as_str()
        .or_else(|| v["name"].as_str())
        .unwrap_or(&id)
        .to_string();
    Ok(Site {
        id,
        name,
        configured: site.display(),
    })
}

/// The document libraries of a site: (drive id, name, webUrl).
///
/// # Errors
/// As [`graph::get_json`].
pub fn drives_of(
    settings: &Settings,
    site: &Site,
) -> Result<Vec<(String, String, String)>, PluginError> {
    let url = format!(
        "{}/v1.0/sites/{}/drives?$select=id,name,driveType,webUrl",
        settings.graph, site.id
    );
    let v = graph::get_json(
        &url,
        &format!("listing the libraries of site {}", site.configured),
    )?;
    Ok(v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| {
            d["driveType"]
                .as_str()
                .is_none_or(|t| t == "documentLibrary" || t == "business" || t == "personal")
        })
        .map(|d| {
            (
                d["id"].as_str().unwrap_or_default().to_string(),
                d["name"].as_str().unwrap_or_default().to_string(),
                d["webUrl"].as_str().unwrap_or_default().to_string(),
            )
        })
        .filter(|(id, _, _)| !id.is_empty())
        .collect())
}

/// Every configured library, resolved, in configuration order.
///
/// # Errors
/// `invalid-config` naming `sites` or `libraries`; Graph errors otherwise.
pub fn resolve(settings: &Settings) -> Result<Vec<Library>, PluginError> {
    let mut out: Vec<Library> = Vec::new();
    let mut seen_names: Vec<String> = Vec::new();
    let mut matched = vec![false; settings.libraries.len()];
    for site_ref in &settings.sites {
        let site = resolve_site(settings, site_ref)?;
        for (drive, name, web_url) in drives_of(settings, &site)? {
            seen_names.push(format!("{name} (on {})", site.configured));
            let wanted = settings.libraries.is_empty()
                || settings.libraries.iter().enumerate().any(|(i, l)| {
                    let m = l.matches(&drive, &name, &web_url);
                    if m && let Some(flag) = matched.get_mut(i) {
                        *flag = true;
                    }
                    m
                });
            if !wanted || out.iter().any(|l| l.drive == drive) {
                continue;
            }
            let list = list_id(settings, &drive, &name)?;
            out.push(Library {
                site: site.id.clone(),
                drive,
                list,
                label: format!("{} / {name}", site.name),
                link: None,
            });
        }
    }
    let missing: Vec<&str> = settings
        .libraries
        .iter()
        .zip(&matched)
        .filter(|(_, m)| !**m)
        .map(|(l, _)| LibraryRef::display(l))
        .collect();
    if !missing.is_empty() {
        return Err(PluginError::invalid_config(
            Some(field::LIBRARIES),
            format!(
                "no configured site has a document library named {}; they have: {}. Use a library's name as SharePoint shows it, or its drive id (b!…), or leave `libraries` empty for all",
                missing.join(", "),
                if seen_names.is_empty() {
                    "none".to_string()
                } else {
                    seen_names.join(", ")
                }
            ),
        ));
    }
    if out.is_empty() {
        return Err(PluginError::invalid_config(
            Some(field::SITES),
            "the configured sites have no document libraries",
        ));
    }
    Ok(out)
}

fn list_id(settings: &Settings, drive: &str, name: &str) -> Result<String, PluginError> {
    let url = format!(
        "{}/v1.0/drives/{drive}/list?$select=id,displayName",
        settings.graph
    );
    let v: Value = graph::get_json(&url, &format!("reading the list behind library {name}"))?;
    v["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
        .ok_or_else(|| {
            PluginError::fatal(format!(
                "library {name} has no SharePoint list behind it (a OneDrive without columns?); ProofPix writes results into list columns"
            ))
        })
}
