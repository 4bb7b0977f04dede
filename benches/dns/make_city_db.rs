//! Builds the GeoIP database the DNS benchmark gives both servers: the shipped country
//! database rewritten in the GeoIP2-City layout (each network at its country's centroid),
//! which gdnsd's distance mode needs, plus a sample of client subnets for the queries.
//!
//!     cargo run --release --example make_city_db -- IN.mmdb COUNTRIES.csv OUT.mmdb SUBNETS.txt
//!
//! SUBNETS.txt gets one IPv4 `/24` per line, spread over the database's networks.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Deserialize)]
struct Flat<'a> {
    country_code: Option<&'a str>,
}

#[derive(Serialize)]
struct City<'a> {
    location: Location,
    country: Country<'a>,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize)]
struct Country<'a> {
    iso_code: &'a str,
}

/// How many client subnets to sample.
const SAMPLES: usize = 4096;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, countries, output, subnets] = args.as_slice() else {
        anyhow::bail!("usage: make_city_db IN.mmdb COUNTRIES.csv OUT.mmdb SUBNETS.txt");
    };
    let centroids = read_centroids(countries)?;
    let reader = maxminddb::Reader::open_readfile(input)?;
    let mut writer = mmdb_writer::Writer::new("GeoIP2-City");
    let mut v4_nets = Vec::new();
    let mut count = 0usize;
    for item in reader.networks(maxminddb::WithinOptions::default())? {
        let item = item?;
        let Some(flat) = item.decode::<Flat<'_>>()? else {
            continue;
        };
        let Some(cc) = flat.country_code else {
            continue;
        };
        let Some(&(lat, lon)) = centroids.get(cc) else {
            continue;
        };
        let net: ipnet::IpNet = item.network()?.to_string().parse()?;
        if is_ipv4_alias(&net) {
            // The writer maps these IPv6 ranges onto the IPv4 tree itself.
            continue;
        }
        writer.insert(
            net,
            &City {
                location: Location {
                    latitude: lat,
                    longitude: lon,
                },
                country: Country { iso_code: cc },
            },
        )?;
        if let (IpAddr::V4(addr), true) = (net.addr(), net.prefix_len() <= 24) {
            v4_nets.push(addr);
        }
        count += 1;
    }
    std::fs::write(output, writer.to_bytes()?)?;
    let step = (v4_nets.len() / SAMPLES).max(1);
    let lines: Vec<String> = v4_nets
        .iter()
        .step_by(step)
        .take(SAMPLES)
        .map(|a| {
            let o = a.octets();
            format!("{}.{}.{}.0", o[0], o[1], o[2])
        })
        .collect();
    std::fs::write(subnets, lines.join("\n") + "\n")?;
    eprintln!(
        "{count} networks written to {output}, {} sample subnets to {subnets}",
        lines.len()
    );
    Ok(())
}

fn read_centroids(path: &str) -> anyhow::Result<HashMap<String, (f64, f64)>> {
    let mut out = HashMap::new();
    for line in std::fs::read_to_string(path)?.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if let [cc, lat, lon, ..] = f.as_slice() {
            out.insert((*cc).to_owned(), (lat.parse()?, lon.parse()?));
        }
    }
    Ok(out)
}

/// IPv6 ranges that MaxMind databases alias to IPv4 (IPv4-mapped/compatible, Teredo, 6to4).
fn is_ipv4_alias(net: &ipnet::IpNet) -> bool {
    let ipnet::IpNet::V6(v6) = net else {
        return false;
    };
    ["::/96", "::ffff:0:0/96", "2001::/32", "2002::/16"]
        .iter()
        .filter_map(|a| a.parse::<ipnet::Ipv6Net>().ok())
        .any(|alias| alias.contains(v6) || v6.contains(&alias))
}
