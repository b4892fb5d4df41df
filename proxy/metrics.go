package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
	retries       *prometheus.CounterVec
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
			Name: "pushproxy_tokens_signed_total", Help: "Provider tokens and VAPID JWTs signed.",
		}, []string{"kind"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_credential_reloads_total", Help: "Credential reloads that changed or failed something, by result.",
		}, []string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pushproxy_in_flight", Help: "Notifications being processed now.",
		}),
		goaways: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_apns_goaway_total", Help: "GOAWAY frames that failed a request, by reason.",
		}, []string{"reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_upstream_attempts_total", Help: "Upstream attempts, by platform and outcome class.",
		}, []string{"platform", "outcome"}),
	}
	m.reg.MustRegister(m.notifications, m.upstream, m.tokensSigned, m.reloads, m.inFlight, m.goaways, m.retries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"ok", "error"} {
		m.reloads.WithLabelValues(r)
	}
	return m
}

// boundedReason keeps a GOAWAY reason label bounded to Apple's documented
// reasons.
func boundedReason(r string) string {
	switch r {
	case "Shutdown", "BadCertificateEnvironment", "BadCertificate", "IdleTimeout", "InternalServerError",
		"ServiceUnavailable", "ExpiredProviderToken", "InvalidProviderToken", "TooManyProviderTokenUpdates",
		"UnrelatedKeyIdInToken", "MissingProviderToken", "Forbidden":
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
