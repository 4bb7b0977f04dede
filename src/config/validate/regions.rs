//! Validation of `[[regions]]`: names, locations, origins and their health checks.

use super::*;

impl Builder<'_> {
    pub(super) fn regions(&mut self, f: &FileConfig) -> Vec<Region> {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut regions = Vec::with_capacity(f.regions.len());
        for (i, r) in f.regions.iter().enumerate() {
            let key = format!("regions[{i}]");
            let name = r.name.get_ref().trim();
            if name.is_empty() {
                self.push(r.name.span(), format!("{key}.name"), "region name is empty");
            } else if let Some(first) = names.insert(name, i) {
                self.push(
                    r.name.span(),
                    format!("{key}.name"),
                    format!("region {name:?} is already defined by regions[{first}]"),
                );
            }
            let location = self.location(&r.location, &format!("{key}.location"));
            let origins = self.origins(&r.origins, &format!("{key}.origins"));
            let health_check = self.health_check(r.health_check.as_ref(), &key);
            let bias_km = match &r.bias_km {
                Some(b) if b.get_ref().is_finite() && b.get_ref().abs() <= 40_000.0 => *b.get_ref(),
                Some(b) => {
                    self.push(
                        b.span(),
                        format!("{key}.bias_km"),
                        format!("{} km is not a usable bias (|bias| <= 40000)", b.get_ref()),
                    );
                    0.0
                }
                None => 0.0,
            };
            let dns_addresses =
                self.ip_list(r.dns_addresses.as_ref(), &format!("{key}.dns_addresses"));
            let tls = r
                .tls
                .as_ref()
                .and_then(|t| self.origin_tls(t, &format!("{key}.tls")));
            if tls.is_some() && matches!(health_check.kind, HealthCheckKind::Http(_)) {
                // The checker speaks plain HTTP; against a TLS port every check would fail.
                self.push_hint(
                    r.name.span(),
                    format!("{key}.health_check.kind"),
                    "HTTP health checks are plaintext and this region's origins speak TLS",
                    "use kind = \"tcp\" for a TLS region",
                );
            }
            regions.push(Region {
                name: name.to_owned(),
                location,
                origins,
                health_check,
                bias_km,
                dns_addresses,
                kind: RegionKind::Origins,
                tls,
                http2: r.http2.unwrap_or(false),
            });
        }
        regions
    }

    /// A list of literal IP addresses (DNS answers never resolve names).
    pub(super) fn ip_list(
        &mut self,
        list: Option<&Spanned<Vec<Spanned<String>>>>,
        key: &str,
    ) -> Vec<std::net::IpAddr> {
        let mut out = Vec::new();
        for (i, v) in list
            .map(|l| l.get_ref().as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            match v.get_ref().trim().parse::<std::net::IpAddr>() {
                Ok(ip) if !out.contains(&ip) => out.push(ip),
                Ok(ip) => self.push(
                    v.span(),
                    format!("{key}[{i}]"),
                    format!("{ip} is listed twice"),
                ),
                Err(_) => self.push_hint(
                    v.span(),
                    format!("{key}[{i}]"),
                    format!("{:?} is not an IP address", v.get_ref()),
                    "write e.g. \"192.0.2.10\" or \"2001:db8::10\"",
                ),
            }
        }
        out
    }

    pub(super) fn origins(
        &mut self,
        list: &Spanned<Vec<Spanned<OriginFile>>>,
        key: &str,
    ) -> Vec<Origin> {
        if list.get_ref().is_empty() {
            self.push_hint(
                list.span(),
                key,
                "a region needs at least one origin",
                "add e.g. origins = [\"10.0.0.5:80\"]",
            );
        }
        let mut out = Vec::new();
        for (i, o) in list.get_ref().iter().enumerate() {
            let okey = format!("{key}[{i}]");
            let origin = o.get_ref();
            // A bare-string origin has no span of its own: point at the list element instead.
            let addr_span = if origin.addr.span() == (0..0) {
                o.span()
            } else {
                origin.addr.span()
            };
            let weight = match &origin.weight {
                None => 1,
                Some(w) if (1..=MAX_WEIGHT).contains(w.get_ref()) => *w.get_ref() as u32,
                Some(w) => {
                    self.push(
                        w.span(),
                        format!("{okey}.weight"),
                        format!("weight {} is outside 1..={MAX_WEIGHT}", w.get_ref()),
                    );
                    1
                }
            };
            let health_check = origin
                .health_check
                .as_ref()
                .map(|hc| self.health_check(Some(hc), &okey));
            if let Some(addr) = self.origin_addr(origin.addr.get_ref(), addr_span, &okey) {
                out.push(Origin {
                    addr,
                    weight,
                    health_check,
                });
            }
        }
        out
    }

    /// Origins may be names; they are resolved once, here, as nginx does at startup.
    pub(super) fn origin_addr(
        &mut self,
        text: &str,
        span: Range<usize>,
        key: &str,
    ) -> Option<SocketAddr> {
        if let Ok(a) = text.parse::<SocketAddr>() {
            return Some(a);
        }
        let has_port = text
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        if !has_port {
            self.push_hint(
                span,
                key,
                format!("{text:?} has no port"),
                "write host:port, e.g. \"10.0.0.5:80\"",
            );
            return None;
        }
        match text.to_socket_addrs().map(|mut it| it.next()) {
            Ok(Some(a)) => Some(a),
            Ok(None) | Err(_) => {
                self.push_hint(
                    span,
                    key,
                    format!("{text:?} does not resolve to an address"),
                    "check the host name, or give an ip:port",
                );
                None
            }
        }
    }

    pub(super) fn health_check(
        &mut self,
        hc: Option<&HealthCheckFile>,
        region_key: &str,
    ) -> HealthCheck {
        let key = format!("{region_key}.health_check");
        let none = HealthCheckFile {
            kind: None,
            path: None,
            interval: None,
            timeout: None,
            healthy_after: None,
            unhealthy_after: None,
            jitter: None,
            method: None,
            host: None,
            expect_status: None,
            body_contains: None,
        };
        let hc = hc.unwrap_or(&none);
        let path = match &hc.path {
            Some(p) if !p.get_ref().starts_with('/') => {
                self.push_hint(
                    p.span(),
                    format!("{key}.path"),
                    format!("{:?} is not an absolute path", p.get_ref()),
                    "start it with '/', e.g. \"/healthz\"",
                );
                "/".to_owned()
            }
            Some(p) => p.get_ref().clone(),
            None => "/".to_owned(),
        };
        let method = match hc.method.as_ref().map(|m| m.get_ref().as_str()) {
            None | Some("GET") => http::Method::GET,
            Some("HEAD") => http::Method::HEAD,
            Some(other) => {
                let span = hc.method.as_ref().map_or(0..0, |m| m.span());
                self.push_hint(
                    span,
                    format!("{key}.method"),
                    format!("{other:?} is not a health check method"),
                    "write \"GET\" or \"HEAD\"",
                );
                http::Method::GET
            }
        };
        let host = hc.host.as_ref().and_then(|h| {
            let v = h.get_ref().trim();
            if v.is_empty() || HeaderValue::from_str(v).is_err() {
                self.push(
                    h.span(),
                    format!("{key}.host"),
                    format!("{v:?} is not a Host value"),
                );
                None
            } else {
                Some(v.to_owned())
            }
        });
        let mut expect_status = Vec::new();
        for (i, st) in hc.expect_status.iter().flatten().enumerate() {
            match u16::try_from(*st.get_ref()) {
                Ok(code) if (100..=599).contains(&code) => expect_status.push(code),
                _ => self.push(
                    st.span(),
                    format!("{key}.expect_status[{i}]"),
                    format!("{} is not an HTTP status", st.get_ref()),
                ),
            }
        }
        let body_contains = hc.body_contains.as_ref().map(|b| b.get_ref().clone());
        let kind = match hc.kind.as_ref().map(|k| k.get_ref().as_str()) {
            None | Some("http") => HealthCheckKind::Http(HttpCheck {
                method,
                path,
                host,
                expect_status,
                body_contains,
            }),
            Some("tcp") => HealthCheckKind::Tcp,
            Some(other) => {
                let span = hc.kind.as_ref().map_or(0..0, |k| k.span());
                self.push_hint(
                    span,
                    format!("{key}.kind"),
                    format!("{other:?} is not a health check kind"),
                    "write \"http\" or \"tcp\"",
                );
                HealthCheckKind::Tcp
            }
        };
        let interval = self.duration(
            &hc.interval,
            &format!("{key}.interval"),
            DEFAULT_CHECK_INTERVAL,
        );
        let timeout = self.duration(
            &hc.timeout,
            &format!("{key}.timeout"),
            DEFAULT_CHECK_TIMEOUT.min(interval),
        );
        if timeout > interval {
            if let Some(t) = &hc.timeout {
                self.push_hint(
                    t.span(),
                    format!("{key}.timeout"),
                    format!(
                        "timeout {} is longer than the interval {}",
                        humantime::format_duration(timeout),
                        humantime::format_duration(interval)
                    ),
                    "a check must finish before the next one starts",
                );
            }
        }
        let healthy_after = self.count(
            &hc.healthy_after,
            &format!("{key}.healthy_after"),
            DEFAULT_CHECK_RISE_FALL,
            1,
            100,
        ) as u32;
        let unhealthy_after = self.count(
            &hc.unhealthy_after,
            &format!("{key}.unhealthy_after"),
            DEFAULT_CHECK_RISE_FALL,
            1,
            100,
        ) as u32;
        let jitter = match &hc.jitter {
            Some(j) => self.duration(&Some(j.clone()), &format!("{key}.jitter"), interval / 10),
            None => interval / 10,
        };
        HealthCheck {
            kind,
            interval,
            timeout,
            healthy_after,
            unhealthy_after,
            jitter,
        }
    }
}
