package app

import (
	"testing"

	"github.com/hibiken/asynq"
)

// TestRedisConnOpt: a redis-sentinel:// URL's password is the Redis
// servers' (and the Sentinels' unless sentinel_password says otherwise),
// its path the database; other schemes are asynq's.
func TestRedisConnOpt(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want asynq.RedisConnOpt
	}{
		{"redis-sentinel://:pw@s1:26379,s2:26379/3?master=main",
			asynq.RedisFailoverClientOpt{MasterName: "main", SentinelAddrs: []string{"s1:26379", "s2:26379"}, Password: "pw", SentinelPassword: "pw", DB: 3}},
		{"redis-sentinel://:pw@s1:26379?master=main&sentinel_password=",
			asynq.RedisFailoverClientOpt{MasterName: "main", SentinelAddrs: []string{"s1:26379"}, Password: "pw"}},
		{"redis-sentinel://s1:26379,s2:26379,s3:26379/0?master=main",
			asynq.RedisFailoverClientOpt{MasterName: "main", SentinelAddrs: []string{"s1:26379", "s2:26379", "s3:26379"}}},
		{"redis://:pw@127.0.0.1:6379/2", asynq.RedisClientOpt{Addr: "127.0.0.1:6379", Password: "pw", DB: 2}},
	} {
		got, err := redisConnOpt(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if g, ok := got.(asynq.RedisFailoverClientOpt); ok {
			w := tc.want.(asynq.RedisFailoverClientOpt)
			if g.MasterName != w.MasterName || g.Password != w.Password || g.SentinelPassword != w.SentinelPassword || g.DB != w.DB ||
				len(g.SentinelAddrs) != len(w.SentinelAddrs) {
				t.Errorf("%s: %+v, want %+v", tc.url, g, w)
			}
			continue
		}
		if g := got.(asynq.RedisClientOpt); g.Addr != tc.want.(asynq.RedisClientOpt).Addr || g.Password != "pw" || g.DB != 2 {
			t.Errorf("%s: %+v", tc.url, g)
		}
	}
	for _, bad := range []string{"redis-sentinel://s1:26379/0", "redis-sentinel://s1:26379/x?master=m"} {
		if _, err := redisConnOpt(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
