//! GeoIP: where an address is, from a MaxMind-layout database, and how far apart places are.
//!
//! Reads GeoIP2 / GeoLite2 City (`location.latitude/longitude`), Country (`country.iso_code`)
//! and the flat `country_code` layout of the ip-location-db databases. A record with a country
//! but no coordinates is placed at the country's centroid from a CSV table.

pub mod distance;

use distance::GeoPoint;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Why a GeoIP database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The database file is missing, unreadable or not a MaxMind DB.
    #[error("{path}: cannot open the GeoIP database")]
    Database {
        path: PathBuf,
        #[source]
        source: maxminddb::MaxMindDbError,
    },
    /// The country coordinates file is missing or unreadable.
    #[error("{path}: cannot read the country coordinates")]
    Countries {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of the country coordinates file is not `CC,lat,lon`.
    #[error("{path}:{line}: expected CC,latitude,longitude")]
    CountryLine { path: PathBuf, line: usize },
}

/// Where an address is, and how precisely the database knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    pub point: GeoPoint,
    /// ISO 3166-1 alpha-2, upper-case.
    pub country: Option<[u8; 2]>,
    /// Prefix length of the database network that matched (an ECS scope for geo-DNS).
    pub prefix_len: u8,
}

/// What the database says of an address: where it is, if known, and how wide the network
/// holding it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Located {
    pub location: Option<Location>,
    pub prefix_len: u8,
}

/// An opened GeoIP database and its country table.
pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
    countries: HashMap<[u8; 2], GeoPoint>,
    path: PathBuf,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("path", &self.path)
            .field("countries", &self.countries.len())
            .finish()
    }
}

#[derive(Deserialize)]
struct Record<'a> {
    location: Option<RecordLocation>,
    #[serde(borrow)]
    country: Option<RecordCountry<'a>>,
    /// ip-location-db's flat layout.
    country_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct RecordLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(Deserialize)]
struct RecordCountry<'a> {
    iso_code: Option<&'a str>,
}

impl GeoIp {
    /// Opens `database` and, when given, the `countries` CSV (`CC,lat,lon` per line, `#`
    /// comments).
    pub fn open(database: &Path, countries: Option<&Path>) -> Result<Self, GeoError> {
        let reader =
            maxminddb::Reader::open_readfile(database).map_err(|source| GeoError::Database {
                path: database.to_path_buf(),
                source,
            })?;
        let countries = match countries {
            Some(path) => load_countries(path)?,
            None => HashMap::new(),
        };
        Ok(GeoIp {
            reader,
            countries,
            path: database.to_path_buf(),
        })
    }

    /// The location of `ip`, or `None` when the database does not place it.
    pub fn lookup(&self, ip: IpAddr) -> Option<Location> {
        self.locate(ip).location
    }

    /// The location of `ip` and the prefix length of the database network it falls in, which
    /// is known even when that network has no location (an ECS scope for "unknown" answers).
    pub fn locate(&self, ip: IpAddr) -> Located {
        let Ok(result) = self.reader.lookup(ip) else {
            return Located {
                location: None,
                prefix_len: 0,
            };
        };
        // An IPv4 address that ends above the IPv4 subtree of an IPv6 database is in no
        // IPv4 network at all: the whole IPv4 space shares the answer.
        let prefix_len = match result.network() {
            Ok(net) if net.is_ipv4() == ip.is_ipv4() => net.prefix(),
            _ => 0,
        };
        Located {
            location: self.location(&result, prefix_len),
            prefix_len,
        }
    }

    fn location(
        &self,
        result: &maxminddb::LookupResult<'_, Vec<u8>>,
        prefix_len: u8,
    ) -> Option<Location> {
        let record: Record<'_> = result.decode().ok()??;
        let country = record
            .country
            .and_then(|c| c.iso_code)
            .or(record.country_code)
            .and_then(country_code);
        let exact = record
            .location
            .and_then(|l| GeoPoint::new(l.latitude?, l.longitude?));
        let point = exact.or_else(|| self.countries.get(&country?).copied())?;
        Some(Location {
            point,
            country,
            prefix_len,
        })
    }
}

fn country_code(s: &str) -> Option<[u8; 2]> {
    match s.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

fn load_countries(path: &Path) -> Result<HashMap<[u8; 2], GeoPoint>, GeoError> {
    let text = std::fs::read_to_string(path).map_err(|source| GeoError::Countries {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || GeoError::CountryLine {
            path: path.to_path_buf(),
            line: i + 1,
        };
        let mut fields = line.split(',').map(str::trim);
        let (Some(cc), Some(lat), Some(lon)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad());
        };
        let cc = country_code(cc).ok_or_else(bad)?;
        let point = lat
            .parse()
            .ok()
            .zip(lon.parse().ok())
            .and_then(|(lat, lon)| GeoPoint::new(lat, lon))
            .ok_or_else(bad)?;
        out.insert(cc, point);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_two_letters_upper_cased() {
        assert_eq!(country_code("ie"), Some(*b"IE"));
        assert_eq!(country_code("USA"), None);
        assert_eq!(country_code("1A"), None);
    }

    #[test]
    fn the_country_table_rejects_a_bad_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, "# cc,lat,lon\nIE,53.0,-8.0\nXX,north,0\n").unwrap();
        let err = load_countries(&path).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("c.csv:3: expected CC,latitude,longitude"),
            "{err}"
        );
        std::fs::write(&path, "IE,53.0,-8.0\n").unwrap();
        assert_eq!(
            load_countries(&path).unwrap()[b"IE"],
            GeoPoint {
                lat: 53.0,
                lon: -8.0
            }
        );
    }

    #[test]
    fn a_missing_or_corrupt_database_is_an_error_naming_the_file() {
        let err = GeoIp::open(Path::new("/nonexistent/x.mmdb"), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/x.mmdb: cannot open"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        assert!(GeoIp::open(&path, None).is_err());
    }
}
