//! The query language of the list endpoints: `filter=key:v1,v2` (AND across filters, IN
//! within one), `search_query` with `search_fields`, `page_size` and `page_token`.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::cursor::{self, Listing};
use gridroll_domain::PartnerId;
use gridroll_store::Search;
use serde_json::json;
use strum::VariantNames;

use crate::error::{ApiError, ApiResult};

/// Most values one filter, or one search, may name.
const MAX_VALUES: usize = 100;

/// Most filters one request may give.
const MAX_FILTERS: usize = 20;

fn clip(text: &str) -> String {
    gridroll_domain::suggest::clip(text)
}

/// The parsed query string of a list endpoint.
#[derive(Debug, Default)]
pub struct ListQuery {
    /// Values per filter key; a key given twice keeps the values both allow.
    pub filters: BTreeMap<String, Vec<String>>,
    pub search_terms: Option<Vec<String>>,
    pub search_fields: Vec<String>,
    pub page_size: Option<String>,
    pub page_token: Option<String>,
}

impl ListQuery {
    /// Parses a raw query string; unknown parameters are refused.
    pub fn parse(raw: Option<&str>) -> ApiResult<Self> {
        let mut query = Self::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if let Some(c) = gridroll_domain::text::control_character(&key)
                .or_else(|| gridroll_domain::text::control_character(&value))
            {
                return Err(ApiError::bad_request(
                    "Invalid query parameter",
                    json!({"parameter": clip(&key),
                           "error": gridroll_domain::text::control_character_message(c)}),
                ));
            }
            match key.as_ref() {
                "filter" => {
                    let (name, values) = value
                        .split_once(':')
                        .ok_or_else(|| bad_filter(&value, "write a filter as key:value1,value2"))?;
                    let values: Vec<String> = values
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if values.is_empty() {
                        return Err(bad_filter(&value, "the filter names no value"));
                    }
                    if values.len() > MAX_VALUES {
                        return Err(bad_filter(
                            &clip(&value),
                            &format!("a filter takes at most {MAX_VALUES} values"),
                        ));
                    }
                    let name = name.trim().to_owned();
                    match query.filters.get_mut(&name) {
                        Some(existing) => existing.retain(|v| values.contains(v)),
                        None => {
                            query.filters.insert(name, values);
                        }
                    }
                }
                "search_query" => {
                    let terms: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if terms.len() > MAX_VALUES {
                        return Err(ApiError::bad_request(
                            "Invalid search_query",
                            json!({"error": format!("at most {MAX_VALUES} terms")}),
                        ));
                    }
                    query.search_terms = Some(terms);
                }
                "search_fields" => query.search_fields.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|f| !f.is_empty())
                        .map(str::to_owned),
                ),
                "page_size" => query.page_size = Some(value.into_owned()),
                "page_token" => query.page_token = Some(value.into_owned()),
                other => {
                    return Err(ApiError::bad_request(
                        "Unknown query parameter",
                        json!({"parameter": clip(other),
                               "known": ["filter", "search_query", "search_fields", "page_size", "page_token"]}),
                    ));
                }
            }
        }
        if query.filters.len() > MAX_FILTERS {
            return Err(ApiError::bad_request(
                "Too many filters",
                json!({"error": format!("at most {MAX_FILTERS} filter keys")}),
            ));
        }
        Ok(query)
    }

    /// Refuses filter keys this listing does not know.
    pub fn check_keys(&self, known: &[&str]) -> ApiResult<()> {
        for key in self.filters.keys() {
            if !known.contains(&key.as_str()) {
                return Err(ApiError::bad_request(
                    "Unknown filter key",
                    json!({"filter": clip(key), "known": known}),
                ));
            }
        }
        Ok(())
    }

    /// The values of a filter key as text.
    pub fn texts(&self, key: &str) -> Option<Vec<String>> {
        self.filters.get(key).cloned()
    }

    /// The values of a filter key, each parsed; a value that does not parse is a 400.
    pub fn parsed<T: FromStr + VariantNames>(&self, key: &str) -> ApiResult<Option<Vec<T>>> {
        self.filters
            .get(key)
            .map(|values| {
                values
                    .iter()
                    .map(|v| {
                        v.parse().map_err(|_| {
                            ApiError::bad_request(
                                "Invalid filter value",
                                json!({"filter": key, "value": clip(v), "allowed": T::VARIANTS}),
                            )
                        })
                    })
                    .collect()
            })
            .transpose()
    }

    /// The search, if any: the fields must be named and known.
    pub fn search<F: Copy>(&self, known: &[(&str, F)]) -> ApiResult<Option<Search<F>>> {
        let Some(terms) = &self.search_terms else {
            if !self.search_fields.is_empty() {
                return Err(ApiError::bad_request(
                    "search_fields without search_query",
                    json!({"error": "give search_query too, or leave search_fields out"}),
                ));
            }
            return Ok(None);
        };
        let names: Vec<&str> = known.iter().map(|(name, _)| *name).collect();
        if self.search_fields.is_empty() {
            return Err(ApiError::bad_request(
                "search_fields is required with search_query",
                json!({"known": names}),
            ));
        }
        let fields = self
            .search_fields
            .iter()
            .map(|name| {
                known
                    .iter()
                    .find(|(known, _)| known == name)
                    .map(|(_, field)| *field)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "Unknown search field",
                            json!({"search_field": clip(name), "known": names}),
                        )
                    })
            })
            .collect::<ApiResult<Vec<F>>>()?;
        Ok(Some(Search {
            terms: terms.clone(),
            fields,
        }))
    }

    /// `page_size` within 1..=max, or the default.
    pub fn page_size(&self, default: usize, max: usize) -> ApiResult<usize> {
        match &self.page_size {
            None => Ok(default),
            Some(raw) => page_size(raw.parse::<i64>().ok(), raw, max),
        }
    }

    /// The position a `page_token` names.
    pub fn position(&self, listing: Listing, partner: PartnerId) -> ApiResult<Option<Vec<u8>>> {
        self.page_token
            .as_deref()
            .map(|token| decode_token(token, listing, partner))
            .transpose()
    }
}

/// Checks a page size given as a number.
pub fn page_size(value: Option<i64>, raw: &str, max: usize) -> ApiResult<usize> {
    match value {
        Some(n) if n >= 1 && n <= max as i64 => Ok(n as usize),
        _ => Err(ApiError::bad_request(
            "Invalid page_size",
            json!({"page_size": raw, "error": format!("must be a whole number from 1 to {max}")}),
        )),
    }
}

pub fn decode_token(token: &str, listing: Listing, partner: PartnerId) -> ApiResult<Vec<u8>> {
    cursor::decode(token, listing, partner).map_err(|e| {
        ApiError::bad_request(
            "Invalid page_token",
            json!({"error": format!("{e}; use the next_page_token of the previous answer unchanged")}),
        )
    })
}

fn bad_filter(value: &str, why: &str) -> ApiError {
    ApiError::bad_request("Invalid filter", json!({"filter": value, "error": why}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridroll_domain::job::JobStatus;

    #[test]
    fn filters_are_grouped_by_key_and_repeated_keys_intersect() {
        let q = ListQuery::parse(Some(
            "filter=status:FAILED,COMPLETED&filter=transmission_region:CAISO&filter=status:COMPLETED,PROCESSING",
        ))
        .unwrap();
        assert_eq!(q.texts("status"), Some(vec!["COMPLETED".to_owned()]));
        assert_eq!(
            q.texts("transmission_region"),
            Some(vec!["CAISO".to_owned()])
        );
        assert!(q.check_keys(&["status", "transmission_region"]).is_ok());
        assert!(q.check_keys(&["status"]).is_err());
    }

    #[test]
    fn bad_filters_values_and_parameters_are_refused() {
        assert!(ListQuery::parse(Some("filter=status")).is_err());
        assert!(ListQuery::parse(Some("filter=status:")).is_err());
        assert!(ListQuery::parse(Some("colour=red")).is_err());
        let q = ListQuery::parse(Some("filter=status:DONE")).unwrap();
        assert!(q.parsed::<JobStatus>("status").is_err());
        let q = ListQuery::parse(Some("page_size=0")).unwrap();
        assert!(q.page_size(100, 500).is_err());
        let q = ListQuery::parse(Some("page_size=501")).unwrap();
        assert!(q.page_size(100, 500).is_err());
        let q = ListQuery::parse(Some("page_size=500")).unwrap();
        assert_eq!(q.page_size(100, 500).unwrap(), 500);
    }

    #[test]
    fn a_search_needs_known_fields() {
        let known = [("partner_reference", 1), ("file_name", 2)];
        let q = ListQuery::parse(Some("search_query=abc,def&search_fields=file_name")).unwrap();
        let search = q.search(&known).unwrap().unwrap();
        assert_eq!(search.terms, vec!["abc", "def"]);
        assert_eq!(search.fields, vec![2]);
        assert!(
            ListQuery::parse(Some("search_query=abc"))
                .unwrap()
                .search(&known)
                .is_err()
        );
        assert!(
            ListQuery::parse(Some("search_query=a&search_fields=colour"))
                .unwrap()
                .search(&known)
                .is_err()
        );
        assert!(
            ListQuery::parse(Some("search_fields=file_name"))
                .unwrap()
                .search(&known)
                .is_err()
        );
    }
}
