//go:build linux

package main

import (
	"context"
	"fmt"
	"time"
)

// startJob starts a background command and waits until it is ready.
func (r *runner) startJob(ctx context.Context, c command, e *expectation) error {
	before, err := r.connections(e.uses)
	if err != nil {
		return commandError(c, 0, err, "")
	}
	j := &job{num: r.nextJobNumber(), c: c, e: e, before: before, logOffset: len(r.mosquittoLog())}
	if j.p, err = r.start(jobRun(c.cmd)); err != nil {
		return commandError(c, 0, err, "")
	}
	r.jobs = append(r.jobs, j)
	limit := readyTimeout
	if e.ready.subscribed != "" {
		limit = 30 * time.Second
	}
	err = waitFor(limit, func() (bool, error) { return r.ready(ctx, j) })
	if err != nil {
		return commandError(c, time.Since(j.p.started), fmt.Errorf("job %%%d not ready: %v", j.num, err), j.p.output())
	}
	r.report(c, fmt.Sprintf("job %%%d", j.num), time.Since(j.p.started), "(ready)")
	return nil
}

// ready reports whether job j is ready, or an error if it can no longer be.
func (r *runner) ready(ctx context.Context, j *job) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if j.p.exited() {
		return false, fmt.Errorf("it exited with status %d", exitStatus(j.p.leader))
	}
	if re := j.e.ready.output; re != nil && !re.MatchString(j.p.output()) {
		return false, nil
	}
	if f := j.e.ready.subscribed; f != "" && !subscribedIn(r.mosquittoLog()[j.logOffset:], f) {
		return false, nil
	}
	return true, nil
}

// mosquittoLog returns the log of the runner's Mosquitto so far, if it
// runs.
func (r *runner) mosquittoLog() string {
	if m := r.services[mosquitto]; m != nil {
		return m.p.output()
	}
	return ""
}

// nextJobNumber numbers a new job as bash does: one more than the highest
// number in use.
func (r *runner) nextJobNumber() int {
	n := 1
	for _, j := range r.jobs {
		n = max(n, j.num+1)
	}
	return n
}

// kill stops job n as kill %N in an interactive shell does (SIGTERM to its
// process group), waits for all of it to end, and checks that it ended
// cleanly and printed what it should have.
func (r *runner) kill(ctx context.Context, c command, n int) error {
	j := r.takeJob(n)
	if j == nil {
		return commandError(c, 0, fmt.Errorf("there is no job %%%d running", n), "")
	}
	j.p.signal(stopSignal)
	statuses, err := j.p.wait(ctx, stopTimeout)
	if err == nil {
		err = checkStopped(stopSignal, statuses)
	}
	if err == nil {
		err = checkOutput(j.e.outcomes[0].output, j.p.output())
	}
	if err == nil {
		err = r.checkEffects(j.e, j.before)
	}
	if err != nil {
		return commandError(j.c, time.Since(j.p.started), fmt.Errorf("job %%%d, stopped by %s: %v", n, c.cmd, err), j.p.output())
	}
	r.report(c, "ok", 0, fmt.Sprintf("(job %%%d ran %.1fs and ended cleanly)", n, time.Since(j.p.started).Seconds()))
	return nil
}

// takeJob removes job n from the running jobs and returns it, or nil.
func (r *runner) takeJob(n int) *job {
	for i, j := range r.jobs {
		if j.num == n {
			r.jobs = append(r.jobs[:i], r.jobs[i+1:]...)
			return j
		}
	}
	return nil
}

// endSelfEnding waits for the jobs that end by themselves once a command
// has run after them, and checks how they ended.
func (r *runner) endSelfEnding(ctx context.Context) error {
	for _, j := range append([]*job(nil), r.jobs...) {
		if !j.e.endsAfterNext {
			continue
		}
		r.takeJob(j.num)
		statuses, err := j.p.wait(ctx, stopTimeout)
		if err != nil {
			err = fmt.Errorf("job %%%d did not end by itself after the next command: %v", j.num, err)
		} else {
			err = checkOutcome(j.e.outcomes, exitStatus(statuses[0]), j.p.output())
		}
		if err == nil {
			err = r.checkEffects(j.e, j.before)
		}
		if err != nil {
			return commandError(j.c, time.Since(j.p.started), err, j.p.output())
		}
		r.report(j.c, fmt.Sprintf("job %%%d", j.num), time.Since(j.p.started), "(ended by itself)")
	}
	return nil
}
