package listener

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/composeci/composeci/listener/event"
	"github.com/composeci/composeci/listener/fedmsg"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/stages"
)

// metrics are the service's Prometheus metrics, named by Prometheus's
// conventions. What the domain clients count (Koji round trips, openQA
// requests, mails) they keep themselves; the collector reads it at each
// scrape, so no domain package knows Prometheus.
type metrics struct {
	reg *prometheus.Registry

	eventsReceived *prometheus.CounterVec
	eventsIgnored  *prometheus.CounterVec
	stageRuns      *prometheus.CounterVec
	stageDuration  *prometheus.HistogramVec
	redeliveries   *prometheus.CounterVec
	toFirstPost    prometheus.Histogram
	toReport       prometheus.Histogram
}

// compose latencies run from minutes to a day.
var latencyBuckets = []float64{60, 300, 600, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 16 * 3600, 24 * 3600}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		eventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "composeci_events_received_total",
			Help: "Events stored for the pipeline, by source (amqp, poll, cli) and topic (the message's topic, or the event's kind).",
		}, []string{"source", "topic"}),
		eventsIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "composeci_events_ignored_total",
			Help: "Events and messages that changed nothing, by source and reason (duplicate, irrelevant, invalid).",
		}, []string{"source", "reason"}),
		stageRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "composeci_stage_runs_total",
			Help: "Runs of a stage by this process, by stage and outcome (advanced, waiting, ended, error, handed back, abandoned).",
		}, []string{"stage", "outcome"}),
		stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "composeci_stage_duration_seconds",
			Help:    "How long one run of a stage took, by stage.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 9),
		}, []string{"stage"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "composeci_task_redeliveries_total",
			Help: "Stage tasks delivered again (a worker died, an ack was lost), by stage.",
		}, []string{"stage"}),
		toFirstPost: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "composeci_compose_finished_to_first_post_seconds",
			Help:    "Time from a compose's STATUS first seen final to its first openQA POST.",
			Buckets: latencyBuckets,
		}),
		toReport: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "composeci_compose_finished_to_report_seconds",
			Help:    "Time from a compose's STATUS first seen final to its report going out.",
			Buckets: latencyBuckets,
		}),
	}
	m.reg.MustRegister(m.eventsReceived, m.eventsIgnored, m.stageRuns, m.stageDuration, m.redeliveries, m.toFirstPost, m.toReport,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the metrics in Prometheus's text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// EventStored, StageRan and TaskRedelivered make metrics a
// workflow.Observer.
func (m *metrics) EventStored(e event.Event, duplicate bool) {
	topic := e.Topic
	if topic == "" {
		topic = e.Kind
	}
	m.eventsReceived.WithLabelValues(e.Source, topic).Inc()
	if duplicate {
		m.eventsIgnored.WithLabelValues(e.Source, "duplicate").Inc()
	}
}

func (m *metrics) StageRan(stage workflow.Stage, outcome string, took time.Duration) {
	m.stageRuns.WithLabelValues(string(stage), outcome).Inc()
	m.stageDuration.WithLabelValues(string(stage)).Observe(took.Seconds())
}

func (m *metrics) TaskRedelivered(stage workflow.Stage) {
	m.redeliveries.WithLabelValues(string(stage)).Inc()
}

// composeTimes observes a compose's latencies from the data its stages
// recorded, once each: at the schedule stage that first posted it, and at
// the report stage.
func (m *metrics) composeTimes(stage stages.Name, before, out map[string]string) {
	finished, err := time.Parse(time.RFC3339Nano, before[stages.DataFinishedAt])
	if err != nil {
		return
	}
	observe := func(h prometheus.Histogram, key string) {
		if at, err := time.Parse(time.RFC3339Nano, out[key]); err == nil && before[key] == "" {
			h.Observe(at.Sub(finished).Seconds())
		}
	}
	switch stage {
	case stages.StageSchedule:
		observe(m.toFirstPost, stages.DataScheduledAt)
	case stages.StageReport:
		observe(m.toReport, stages.DataReportedAt)
	}
}

// watch registers the collector of what the listener's parts count: the
// workflows by state, the domain clients' counters, the bus's silence.
func (m *metrics) watch(engine *workflow.Engine, c *stages.Compose, consumer *fedmsg.Consumer) {
	m.reg.MustRegister(&statsCollector{engine: engine, stages: c, consumer: consumer})
}

// statsCollector reads, at each scrape, the counters the parts keep.
type statsCollector struct {
	engine   *workflow.Engine
	stages   *stages.Compose
	consumer *fedmsg.Consumer
}

var (
	descWorkflows = prometheus.NewDesc("composeci_workflows",
		"Compose workflows in the store, by state (active, done, doomed, failed).", []string{"state"}, nil)
	descKojiRoundTrips = prometheus.NewDesc("composeci_koji_round_trips_total",
		"HTTP requests sent to the Koji hub, retries included.", nil, nil)
	descKojiCacheHits = prometheus.NewDesc("composeci_koji_cache_hits_total",
		"Koji task queries answered by the query cache, exactly or from a broader query.", nil, nil)
	descOpenQARequests = prometheus.NewDesc("composeci_openqa_requests_total",
		"HTTP requests sent to openQA, retries included.", nil, nil)
	descOpenQAErrors = prometheus.NewDesc("composeci_openqa_request_errors_total",
		"openQA requests that got no answer or an HTTP status of 400 or more.", nil, nil)
	descMailsSent = prometheus.NewDesc("composeci_mails_sent_total",
		"Report mails the SMTP server accepted.", nil, nil)
	descMailsFailed = prometheus.NewDesc("composeci_mails_failed_total",
		"Report mails that could not be sent.", nil, nil)
	descBusSilence = prometheus.NewDesc("composeci_bus_last_message_age_seconds",
		"Seconds since the last Fedora Messaging message arrived (since the consumer first connected, if none has).", nil, nil)
	descBusIgnored = prometheus.NewDesc("composeci_amqp_messages_ignored_total",
		"Fedora Messaging messages dropped before becoming events, by reason (irrelevant, invalid).", []string{"reason"}, nil)
)

// Describe names every metric the collector may send; which it sends
// depends on what the listener runs (no openQA, no AMQP consumer, ...).
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkflows, descKojiRoundTrips, descKojiCacheHits, descOpenQARequests,
		descOpenQAErrors, descMailsSent, descMailsFailed, descBusSilence, descBusIgnored} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.engine != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if st, err := c.engine.Stats(ctx); err == nil {
			for _, state := range []string{workflow.StateActive, workflow.StateDone, workflow.StateDoomed, workflow.StateFailed} {
				ch <- prometheus.MustNewConstMetric(descWorkflows, prometheus.GaugeValue, float64(st.Workflows[state]), state)
			}
		}
	}
	if c.stages != nil {
		if k := c.stages.AwaitComplete.Koji; k != nil {
			st := k.Stats()
			ch <- prometheus.MustNewConstMetric(descKojiRoundTrips, prometheus.CounterValue, float64(st.RoundTrips))
			ch <- prometheus.MustNewConstMetric(descKojiCacheHits, prometheus.CounterValue, float64(st.CacheHits+st.SubsumptionHits))
		}
		if oq := c.stages.Schedule.OpenQA; oq != nil {
			ch <- prometheus.MustNewConstMetric(descOpenQARequests, prometheus.CounterValue, float64(oq.RoundTrips()))
			ch <- prometheus.MustNewConstMetric(descOpenQAErrors, prometheus.CounterValue, float64(oq.Failures()))
		}
		if mailer := c.stages.Report.Mailer; mailer != nil {
			sent, failed := mailer.Stats()
			ch <- prometheus.MustNewConstMetric(descMailsSent, prometheus.CounterValue, float64(sent))
			ch <- prometheus.MustNewConstMetric(descMailsFailed, prometheus.CounterValue, float64(failed))
		}
	}
	if c.consumer != nil {
		st := c.consumer.Stats()
		ch <- prometheus.MustNewConstMetric(descBusSilence, prometheus.GaugeValue, st.Idle.Seconds())
		ch <- prometheus.MustNewConstMetric(descBusIgnored, prometheus.CounterValue, float64(st.Dropped-st.Invalid), "irrelevant")
		ch <- prometheus.MustNewConstMetric(descBusIgnored, prometheus.CounterValue, float64(st.Invalid), "invalid")
	}
}
