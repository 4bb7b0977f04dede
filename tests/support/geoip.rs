//! GeoIP databases built for the tests, in the GeoIP2 City and Country layouts.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// One network's record, in either layout.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Record {
    City(City),
    Country(CountryOnly),
}

/// A GeoIP2-City record.
#[derive(Serialize)]
pub struct City {
    location: Point,
    country: Country,
}

#[derive(Serialize)]
struct Point {
    latitude: f64,
    longitude: f64,
}

/// A GeoIP2-Country record (no coordinates).
#[derive(Serialize)]
pub struct Country {
    iso_code: &'static str,
}

/// A Country-layout record: `{ country: { iso_code } }`.
#[derive(Serialize)]
pub struct CountryOnly {
    country: Country,
}

/// A city at `lat`, `lon` in country `cc`.
pub fn city(lat: f64, lon: f64, cc: &'static str) -> Record {
    Record::City(City {
        location: Point {
            latitude: lat,
            longitude: lon,
        },
        country: Country { iso_code: cc },
    })
}

/// A record that knows only the country.
pub fn country_only(cc: &'static str) -> Record {
    Record::Country(CountryOnly {
        country: Country { iso_code: cc },
    })
}

/// Writes a database of `networks` (CIDR, record) to `dir/name`.
pub fn write(dir: &Path, name: &str, networks: &[(&str, Record)]) -> PathBuf {
    let mut w = mmdb_writer::Writer::new("Meridian-Test-City");
    for (net, record) in networks {
        w.insert(net.parse::<ipnet::IpNet>().unwrap(), record)
            .unwrap();
    }
    let path = dir.join(name);
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
    path
}
