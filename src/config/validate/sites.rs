//! Validation of `[[sites]]`: host names, routes, cache-key rules and region choices.

use super::*;

impl Builder<'_> {
    pub(super) fn sites(
        &mut self,
        sites: &[SiteFile],
        regions: &[Region],
        node: &GeoPoint,
    ) -> (Vec<Site>, HostIndex) {
        let mut hosts = HostIndex::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::with_capacity(sites.len());
        for (i, s) in sites.iter().enumerate() {
            let key = format!("sites[{i}]");
            let name = s.name.get_ref().trim();
            if name.is_empty() {
                self.push(s.name.span(), format!("{key}.name"), "site name is empty");
            } else if let Some(first) = names.insert(name, i) {
                self.push(
                    s.name.span(),
                    format!("{key}.name"),
                    format!("site {name:?} is already defined by sites[{first}]"),
                );
            }
            let mut site_hosts = Vec::new();
            for (j, h) in s.hosts.get_ref().iter().enumerate() {
                let hkey = format!("{key}.hosts[{j}]");
                let Some(host) = self.host_name(h, &hkey) else {
                    continue;
                };
                if let Some(&(other, _)) = hosts.get(host.as_str()) {
                    let owner = sites.get(other).map_or("?", |o| o.name.get_ref().as_str());
                    self.push_hint(
                        h.span(),
                        hkey,
                        format!("host {host:?} is already served by site {owner:?}"),
                        "a host name belongs to one site",
                    );
                    continue;
                }
                hosts.insert(host.clone().into_boxed_str(), (i, site_hosts.len()));
                site_hosts.push(host);
            }
            if s.hosts.get_ref().is_empty() {
                self.push(
                    s.hosts.span(),
                    format!("{key}.hosts"),
                    "a site needs at least one host",
                );
            }
            let routes = self.routes(s, &key, regions, node);
            let (tls, tls_not_after) = s
                .tls
                .as_ref()
                .and_then(|t| self.certified_key(t, &format!("{key}.tls")))
                .map_or((None, None), |(ck, at)| (Some(ck), at));
            if s.https_redirect == Some(true) && s.tls.is_none() {
                self.push_hint(
                    s.name.span(),
                    format!("{key}.https_redirect"),
                    "redirects to HTTPS but the site has no certificate",
                    "add tls = { cert = \"site.pem\", key = \"site.key\" } and listen.https",
                );
            }
            let hsts = s
                .hsts
                .as_ref()
                .and_then(|h| self.hsts(h, &format!("{key}.hsts")));
            out.push(Site {
                name: name.to_owned(),
                hosts: site_hosts,
                routes,
                tls,
                tls_not_after,
                https_redirect: s.https_redirect.unwrap_or(false),
                hsts,
            });
        }
        (out, hosts)
    }

    /// Host names are matched lower-case and without a port (RFC 9110 §4.2.3).
    pub(super) fn host_name(&mut self, h: &Spanned<String>, key: &str) -> Option<String> {
        let host = h.get_ref().trim().to_ascii_lowercase();
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            let hint = if host.contains(':') {
                "give the name without a port: the port is ignored when matching"
            } else {
                "use a DNS name such as \"www.example.com\""
            };
            self.push_hint(
                h.span(),
                key,
                format!("{:?} is not a host name", h.get_ref()),
                hint,
            );
            return None;
        }
        Some(host)
    }

    pub(super) fn routes(
        &mut self,
        s: &SiteFile,
        site_key: &str,
        regions: &[Region],
        node: &GeoPoint,
    ) -> Vec<Route> {
        let mut paths: HashMap<&str, usize> = HashMap::new();
        let mut routes = Vec::with_capacity(s.routes.len());
        for (j, r) in s.routes.iter().enumerate() {
            let key = format!("{site_key}.routes[{j}]");
            let path = r.path.get_ref();
            if !path.starts_with('/') {
                self.push_hint(
                    r.path.span(),
                    format!("{key}.path"),
                    format!("{path:?} does not start with '/'"),
                    "route paths are prefixes of the request path, e.g. \"/static/\"",
                );
            } else if let Some(first) = paths.insert(path.as_str(), j) {
                self.push(
                    r.path.span(),
                    format!("{key}.path"),
                    format!("path {path:?} is already routed by routes[{first}]"),
                );
            }
            let (choice, order) = self.route_regions(r, &key, regions, node);
            let stale_if_error = match &r.stale_if_error {
                Some(v) => self.duration(
                    &Some(v.clone()),
                    &format!("{key}.stale_if_error"),
                    Duration::ZERO,
                ),
                None => Duration::ZERO,
            };
            let cache_key = self.cache_key_rule(r.cache_key.as_ref(), &key);
            let max_request_body = self.size(
                &r.max_request_body,
                &format!("{key}.max_request_body"),
                self.default_body_limit,
            );
            routes.push(Route {
                path: path.clone(),
                cache: r.cache.unwrap_or(true),
                stale_if_error,
                cache_key,
                regions: choice,
                region_order: order,
                compress: r.compress.unwrap_or(false),
                minify: r.minify.unwrap_or(false),
                compression: match &r.compression {
                    Some(c) => std::sync::Arc::new(self.compression_table(
                        c,
                        &format!("{key}.compression"),
                        &self.node_compression.clone(),
                    )),
                    None => self.node_compression.clone(),
                },
                max_request_body,
                allow_trace: r.allow_trace.unwrap_or(false),
                shield: self.route_shield(r, &key),
                images: self.route_images(r, &key),
            });
        }
        if s.routes.is_empty() {
            self.push_hint(
                s.name.span(),
                format!("{site_key}.routes"),
                "a site needs at least one route",
                "add [[sites.routes]] with path = \"/\"",
            );
        }
        // Longest first: the first prefix match is then the longest one.
        routes.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
        routes
    }

    pub(super) fn cache_key_rule(
        &mut self,
        f: Option<&CacheKeyFile>,
        route_key: &str,
    ) -> CacheKeyRule {
        let Some(f) = f else {
            return CacheKeyRule::DEFAULT;
        };
        let key = format!("{route_key}.cache_key");
        let query = match f.query.as_ref().map(|q| q.get_ref().as_str()) {
            None | Some("keep") => QueryRule::Keep,
            Some("sort") => QueryRule::Sort,
            Some("ignore") => QueryRule::Ignore,
            Some(other) => {
                let span = f.query.as_ref().map_or(0..0, |q| q.span());
                self.push_hint(
                    span,
                    format!("{key}.query"),
                    format!("{other:?} is not a query rule"),
                    "write \"keep\", \"sort\" or \"ignore\"",
                );
                QueryRule::Keep
            }
        };
        let mut ignore_params = Vec::new();
        for (i, p) in f.ignore_params.iter().flatten().enumerate() {
            if p.get_ref().is_empty() || p.get_ref().contains(['&', '=']) {
                self.push(
                    p.span(),
                    format!("{key}.ignore_params[{i}]"),
                    format!("{:?} is not a query parameter name", p.get_ref()),
                );
            } else {
                ignore_params.push(p.get_ref().clone());
            }
        }
        let mut headers = Vec::new();
        for (i, h) in f.headers.iter().flatten().enumerate() {
            match http::HeaderName::from_bytes(h.get_ref().as_bytes()) {
                Ok(name) => headers.push(name),
                Err(_) => self.push(
                    h.span(),
                    format!("{key}.headers[{i}]"),
                    format!("{:?} is not a header name", h.get_ref()),
                ),
            }
        }
        CacheKeyRule {
            query,
            ignore_params,
            headers,
            scheme: f.scheme.unwrap_or(false),
        }
    }

    pub(super) fn route_regions(
        &mut self,
        r: &RouteFile,
        key: &str,
        regions: &[Region],
        node: &GeoPoint,
    ) -> (RegionChoice, Vec<RegionId>) {
        let nearest = || {
            let mut order: Vec<RegionId> = (0..regions.len()).collect();
            order.sort_by(|&a, &b| {
                let da = regions[a].biased_distance_km(node);
                let db = regions[b].biased_distance_km(node);
                da.total_cmp(&db).then(a.cmp(&b))
            });
            order
        };
        let rkey = format!("{key}.regions");
        if regions.is_empty() {
            self.push_hint(
                r.path.span(),
                rkey,
                "there are no regions to send this route to",
                "define at least one [[regions]]",
            );
            return (RegionChoice::Nearest, Vec::new());
        }
        let Some(spec) = &r.regions else {
            return (RegionChoice::Nearest, nearest());
        };
        match spec.get_ref() {
            RegionsFile::Keyword(k) if k == "nearest" => (RegionChoice::Nearest, nearest()),
            RegionsFile::Keyword(k) => {
                self.push_hint(
                    spec.span(),
                    rkey,
                    format!("{k:?} is not a region choice"),
                    "write \"nearest\" or a list of region names",
                );
                (RegionChoice::Nearest, nearest())
            }
            RegionsFile::List(names) => {
                if names.is_empty() {
                    self.push_hint(
                        spec.span(),
                        rkey.clone(),
                        "the region list is empty",
                        "name at least one region, or write \"nearest\"",
                    );
                }
                let mut ids = Vec::with_capacity(names.len());
                for (k, n) in names.iter().enumerate() {
                    match regions.iter().position(|reg| reg.name == *n.get_ref()) {
                        Some(id) if ids.contains(&id) => self.push(
                            n.span(),
                            format!("{rkey}[{k}]"),
                            format!("region {:?} is listed twice", n.get_ref()),
                        ),
                        Some(id) => ids.push(id),
                        None => {
                            let known: Vec<&str> =
                                regions.iter().map(|reg| reg.name.as_str()).collect();
                            let hint = match crate::config::closest(n.get_ref(), &known) {
                                Some(c) => format!("did you mean {c:?}?"),
                                None => format!("known regions: {}", known.join(", ")),
                            };
                            self.push_hint(
                                n.span(),
                                format!("{rkey}[{k}]"),
                                format!("unknown region {:?}", n.get_ref()),
                                hint,
                            );
                        }
                    }
                }
                (RegionChoice::Ordered(ids.clone()), ids)
            }
        }
    }
}
