package koji_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind/koji"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
)

// TestRandomFaultsNeverRetriedAsFaults sends 100 distinct calls, one at a
// time, alone or in multicalls, to a hub that fails 30 % of its requests at
// random: 5xx, 429 with Retry-After, timeouts, bodies cut short and
// XML-RPC faults. The client retries every failure to get an answer and
// returns the right value; an XML-RPC fault is an answer, returned as a
// *koji.Fault and never sent again (every call is distinct, so any repeat
// the hub sees of a faulted request is a retry).
func TestRandomFaultsNeverRetriedAsFaults(t *testing.T) {
	h := newHub(t)
	ids := make([]int, 100)
	for i := range ids {
		ids[i] = h.AddTask(fakefedora.KojiTask{Method: "createImage", Created: testNow.Add(-time.Hour)})
	}
	h.SetRandomFaults(fakefedora.RandomFaultOptions{Seed: 13, P: 0.3, Hold: 5 * time.Second})
	c := newClient(t, h.URL(), koji.Options{CacheTTL: -1, HTTP: httpclient.New(httpclient.Options{
		Timeout: 300 * time.Millisecond, RetryMax: 6, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})})
	ctx := context.Background()
	faults := 0
	check := func(id int, task koji.Task, err error) {
		t.Helper()
		var f *koji.Fault
		switch {
		case errors.As(err, &f) && f.Code == koji.FaultGeneric:
			faults++
		case err != nil:
			t.Errorf("task %d: %v", id, err)
		case task.ID != id:
			t.Errorf("task %d: got task %d", id, task.ID)
		}
	}
	for i := 0; i < len(ids); {
		if i%3 == 0 && i+4 <= len(ids) {
			batch := ids[i : i+4]
			got, err := c.GetTaskInfos(ctx, batch)
			for _, id := range batch {
				check(id, got[id], err)
			}
			if err != nil {
				faults -= len(batch) - 1 // one request, one fault
			}
			i += 4
			continue
		}
		task, err := c.GetTaskInfo(ctx, ids[i])
		check(ids[i], task, err)
		i++
	}
	counts := h.RandomFaultCounts()
	t.Logf("faults injected: %v", counts)
	if faults != counts[fakefedora.FaultXMLRPCFault] || faults == 0 {
		t.Errorf("%d calls failed with a fault, the hub sent %d", faults, counts[fakefedora.FaultXMLRPCFault])
	}
	if n := h.XMLRPCFaultRepeats(0); n != 0 {
		t.Errorf("%d faulted requests sent again", n)
	}
	for _, k := range []fakefedora.FaultKind{fakefedora.FaultHTTP503, fakefedora.FaultTimeout, fakefedora.FaultTruncated} {
		if counts[k] == 0 {
			t.Errorf("no %s injected: the seed does not exercise the retries", k)
		}
	}
}
