// Package openqa talks to openQA: HMAC-authenticated REST calls, the rules
// that turn a compose's images into scheduled products (FLAVORs), idempotent
// scheduling, and collecting a build's results with clones followed.
package openqa

import (
	"cmp"
	"slices"
)

// Job states, as openQA names them.
const (
	StateScheduled = "scheduled"
	StateAssigned  = "assigned"
	StateSetup     = "setup"
	StateRunning   = "running"
	StateUploading = "uploading"
	StateDone      = "done"
	StateCancelled = "cancelled"
)

// Job results, as openQA names them.
const (
	ResultNone              = "none"
	ResultPassed            = "passed"
	ResultSoftfailed        = "softfailed"
	ResultFailed            = "failed"
	ResultIncomplete        = "incomplete"
	ResultSkipped           = "skipped"
	ResultObsoleted         = "obsoleted"
	ResultParallelFailed    = "parallel_failed"
	ResultParallelRestarted = "parallel_restarted"
	ResultUserCancelled     = "user_cancelled"
	ResultUserRestarted     = "user_restarted"
	ResultTimeoutExceeded   = "timeout_exceeded"
)

// Job is one openQA job as the jobs API returns it, reduced to what
// composeci uses. Settings holds every job setting (FLAVOR, ARCH, BUILD,
// MACHINE, ...).
type Job struct {
	ID        int64             `json:"id"`
	Name      string            `json:"name"`
	Test      string            `json:"test"`
	State     string            `json:"state"`
	Result    string            `json:"result"`
	CloneID   int64             `json:"clone_id,omitempty"`  // 0: not cloned
	OriginID  int64             `json:"origin_id,omitempty"` // 0: not a clone
	GroupID   int64             `json:"group_id,omitempty"`
	Group     string            `json:"group,omitempty"`
	Priority  int               `json:"priority,omitempty"`
	TStarted  string            `json:"t_started,omitempty"`
	TFinished string            `json:"t_finished,omitempty"`
	Settings  map[string]string `json:"settings,omitempty"`
	// URL is the job's page, {base}/tests/{id}; set by the client.
	URL string `json:"url,omitempty"`
}

// Flavor returns the job's FLAVOR setting.
func (j Job) Flavor() string { return j.Settings["FLAVOR"] }

// Arch returns the job's ARCH setting.
func (j Job) Arch() string { return j.Settings["ARCH"] }

// Machine returns the job's MACHINE setting.
func (j Job) Machine() string { return j.Settings["MACHINE"] }

// Final reports whether the job will not change any more (done or cancelled).
func (j Job) Final() bool { return j.State == StateDone || j.State == StateCancelled }

// Build returns the job's BUILD setting (the compose ID for compose jobs).
func (j Job) Build() string { return j.Settings["BUILD"] }

// Version returns the job's VERSION setting.
func (j Job) Version() string { return j.Settings["VERSION"] }

// Pending reports whether the job has not finished yet.
func (j Job) Pending() bool { return !j.Final() }

// Live reports whether the job counts as scheduled for its product: not
// cancelled, and not cancelled by a user or by obsoletion. A finished job
// (passed or failed) is live: its product was tested.
func (j Job) Live() bool {
	return j.State != StateCancelled && j.Result != ResultUserCancelled && j.Result != ResultObsoleted
}

// Scenario identifies what a job tests within its build, as openQA's
// latest=1 groups jobs: DISTRI, VERSION, FLAVOR, ARCH, TEST and MACHINE.
// Two jobs of one build with one Scenario are runs of the same test.
func (j Job) Scenario() string {
	s := j.Settings
	return s["DISTRI"] + "." + s["VERSION"] + "." + s["FLAVOR"] + "." + s["ARCH"] + "." + j.Test + "@" + s["MACHINE"]
}

// OK reports whether the job passed or soft-failed (openQA's OK results).
func (j Job) OK() bool { return j.Result == ResultPassed || j.Result == ResultSoftfailed }

func sortJobs(js []Job) {
	slices.SortFunc(js, func(a, b Job) int { return cmp.Compare(a.ID, b.ID) })
}
