package bipsynctest

import "testing"

func TestRecordLocked_dropsOlderHalfWhenFull(t *testing.T) {
	t.Parallel()
	s := NewServer(Options{})
	for i := range maxLoggedRequests + 1 {
		s.recordLocked(LoggedRequest{Status: i})
	}
	log := s.Requests()
	if got, want := len(log), maxLoggedRequests/2+1; got != want {
		t.Fatalf("entries: got %d; want %d", got, want)
	}
	if first, last := log[0].Status, log[len(log)-1].Status; first != maxLoggedRequests/2 || last != maxLoggedRequests {
		t.Errorf("kept statuses %d..%d; want %d..%d", first, last, maxLoggedRequests/2, maxLoggedRequests)
	}
}
