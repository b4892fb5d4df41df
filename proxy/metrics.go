package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/translate"
)

// metrics are pushproxy's Prometheus series, on a registry of their own (no
// global state). Label values are bounded: platforms, codes, kinds, results.
type metrics struct {
	reg           *prometheus.Registry
	notifications *prometheus.CounterVec
	upstream      *prometheus.HistogramVec
	tokensSigned  *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	inFlight      prometheus.Gauge
	goaways       *prometheus.CounterVec
	rests         *prometheus.CounterVec
	retries       *prometheus.CounterVec
}

// credentialCollector exposes, at scrape time, which credential is loaded:
// pushproxy_credential_info{platform, name, fingerprint} 1 and its
// loaded-at time. Names come from the configuration, fingerprints are
// 8 hex digits of a public key: bounded, never secret.
type credentialCollector struct {
	snap func() *creds.Snapshot
	info *prometheus.Desc
	at   *prometheus.Desc
}

func (c *credentialCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.info; ch <- c.at }

func (c *credentialCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	if s == nil {
		return
	}
	emit := func(platform, name, fp string, usable bool, at time.Time) {
		if !usable {
			return
		}
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, platform, name, fp)
		ch <- prometheus.MustNewConstMetric(c.at, prometheus.GaugeValue, float64(at.Unix()), platform, name)
	}
	for _, a := range s.APNs {
		emit("apns", a.Spec.Name, a.Fingerprint, a.Usable(), a.LoadedAt)
	}
	for _, v := range s.VAPID {
		emit("webpush", v.Spec.Name, v.Fingerprint, v.Usable(), v.LoadedAt)
	}
	for _, f := range s.FCM {
		emit("fcm", f.Spec.Name, f.Fingerprint, f.Usable(), f.LoadedAt)
	}
}

// registerBudget adds the request bytes held now (max_body_bytes_in_flight's
// share in use).
func (m *metrics) registerBudget(used func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushproxy_request_bytes_in_flight", Help: "Request body bytes held now, counted against max_body_bytes_in_flight.",
	}, used))
}

// registerRuntime adds the series read from the server at scrape time.
func (m *metrics) registerRuntime(snap func() *creds.Snapshot, conns func() int, apnsSkew, webpushSkew, fcmSkew func() (time.Duration, bool)) {
	m.reg.MustRegister(&credentialCollector{snap: snap,
		info: prometheus.NewDesc("pushproxy_credential_info", "The credential in use: public-key fingerprint by platform and name.", []string{"platform", "name", "fingerprint"}, nil),
		at:   prometheus.NewDesc("pushproxy_credential_loaded_timestamp_seconds", "When the credential in use was loaded.", []string{"platform", "name"}, nil),
	})
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushproxy_apns_connections", Help: "Open HTTP/2 connections to APNs.",
	}, func() float64 { return float64(conns()) }))
	for upstream, skew := range map[string]func() (time.Duration, bool){"apns": apnsSkew, "webpush": webpushSkew, "fcm": fcmSkew} {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushproxy_clock_skew_seconds", Help: "This machine's clock minus the upstream's (Date header of the latest answer); 0 until one came.",
			ConstLabels: prometheus.Labels{"upstream": upstream},
		}, func() float64 { d, _ := skew(); return d.Seconds() }))
	}
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_notifications_total", Help: "Notifications answered, by platform and normalised code (ok on success).",
		}, []string{"platform", "code"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pushproxy_upstream_duration_seconds", Help: "Duration of each upstream attempt.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"platform"}),
		tokensSigned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_tokens_signed_total", Help: "Provider tokens and VAPID JWTs signed, and FCM access-token requests (each sends a newly signed assertion), by kind (apns, vapid, fcm).",
		}, []string{"kind"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_credential_reloads_total", Help: "Credential reloads that changed or failed something, by result.",
		}, []string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pushproxy_in_flight", Help: "Notifications being processed now.",
		}),
		goaways: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_apns_goaway_total", Help: "GOAWAY frames received from APNs (whether or not they failed a request), by reason.",
		}, []string{"reason"}),
		rests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_upstream_rests_total", Help: "Times pushproxy started leaving an upstream host alone (no new connections for up to a second) because it closed or refused every new connection unprocessed, as a draining load balancer does, by platform.",
		}, []string{"platform"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_upstream_attempts_total", Help: "Upstream attempts, by platform and outcome class.",
		}, []string{"platform", "outcome"}),
	}
	m.reg.MustRegister(m.notifications, m.upstream, m.tokensSigned, m.reloads, m.inFlight, m.goaways, m.rests, m.retries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"ok", "error"} {
		m.reloads.WithLabelValues(r)
	}
	return m
}

// boundedReason is a GOAWAY reason as a metric label: one of Apple's
// documented reasons (translate's table), else "other", so that the label
// values stay bounded whatever a server sends.
func boundedReason(r string) string {
	if _, ok := translate.LookupAPNsReason(r); ok {
		return r
	}
	return "other"
}

func outcomeClass(status int) string {
	switch {
	case status == 0:
		return "transport_error"
	case status < 300:
		return "2xx"
	case status < 500:
		return "4xx"
	}
	return "5xx"
}
