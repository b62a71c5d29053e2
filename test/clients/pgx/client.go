// idempotency from pgx v4 (Debian's golang-github-jackc-pgx-v4-dev): the
// README's snippets, run against a server.
//
// Usage: pgx-client direct|pooler   (the server comes from the PG* environment)
// "pooler" connects with the settings the README recommends behind PgBouncer
// in transaction mode.  Built in GOPATH mode (GO111MODULE=off) against
// /usr/share/gocode, so it needs no module download.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgconn"
	"github.com/jackc/pgx/v4"
)

var (
	mode     = os.Args[1]
	ctx      = context.Background()
	checks   int
	failures []string
)

func check(ok bool, what string) {
	checks++
	status := "ok"
	if !ok {
		status = "not ok"
		failures = append(failures, what)
	}
	fmt.Printf("%s %d - pgx %s: %s\n", status, checks, mode, what)
}

func connect() *pgx.Conn {
	config, err := pgx.ParseConfig("") // host, port, database and user from PG*
	if err != nil {
		panic(err)
	}
	if mode == "pooler" {
		// README:pgx-pooler
		config.BuildStatementCache = nil   // no automatic prepared statements
		config.PreferSimpleProtocol = true // and no unnamed ones between round trips
		// README:end
	}
	conn, err := pgx.ConnectConfig(ctx, config)
	if err != nil {
		panic(err)
	}
	return conn
}

func sqlstate(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// README:pgx
// querier: a *pgx.Conn, a pgx.Tx or a *pgxpool.Pool
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pay(ctx context.Context, conn querier, key, customer, amount string) (map[string]any, error) {
	var result map[string]any
	err := conn.QueryRow(ctx, "SELECT idem_execute($1, $2, $3::text, $4::numeric)",
		key, "INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id",
		customer, amount).Scan(&result)
	return result, err
}

func httpStatus(ctx context.Context, conn querier, key, customer, amount string) int {
	_, err := pay(ctx, conn, key, customer, amount)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return 200
	case errors.As(err, &pgErr) && pgErr.Code == "IK001": // the key was used with a different request
		return 422
	case errors.As(err, &pgErr) && pgErr.Code == "IK002": // in flight elsewhere, with idempotency.wait = off
		return 409
	default: // "40001": retry the transaction, it replays
		return 500
	}
}

// README:end

func main() {
	a, b := connect(), connect()

	first, err := pay(ctx, a, "pay-1", "cus_1", "100.00")
	rows, _ := first["rows"].([]any)
	check(err == nil && first["replayed"] == false && first["command"] == "INSERT" && len(rows) == 1,
		fmt.Sprintf("new key runs, result decoded to a map[string]any: %v %v", first, err))
	again, err := pay(ctx, b, "pay-1", "cus_1", "100.00")
	check(err == nil && again["replayed"] == true && reflect.DeepEqual(again["rows"], first["rows"]),
		"the retry from another connection replays the stored rows")
	var n int
	_ = a.QueryRow(ctx, "SELECT count(*) FROM payments").Scan(&n)
	check(n == 1, "one payment row")
	check(httpStatus(ctx, a, "pay-1", "cus_1", "999.00") == 422, "same key, other amount: IK001 (422)")

	// IK002: a holds the key uncommitted; b does not wait
	holder, _ := a.Begin(ctx)
	held, err := pay(ctx, holder, "pay-2", "cus_2", "5")
	check(err == nil && held["replayed"] == false, "holder runs pay-2")
	tx, _ := b.Begin(ctx)
	_, _ = tx.Exec(ctx, "SET LOCAL idempotency.wait = off")
	check(httpStatus(ctx, tx, "pay-2", "cus_2", "5") == 409, "SET LOCAL idempotency.wait = off: IK002 (409) while held")
	_ = tx.Rollback(ctx)
	tx, _ = b.Begin(ctx)
	_, _ = tx.Exec(ctx, "SET LOCAL lock_timeout = '100ms'")
	_, err = pay(ctx, tx, "pay-2", "cus_2", "5")
	check(sqlstate(err) == "55P03", "SET LOCAL lock_timeout = '100ms': 55P03 while held")
	_ = tx.Rollback(ctx)
	_ = holder.Rollback(ctx)
	var wait string
	_ = b.QueryRow(ctx, "SHOW idempotency.wait").Scan(&wait)
	check(wait == "on", "SET LOCAL ended with its transaction")

	// 40001: b's REPEATABLE READ snapshot predates a's commit of the key
	rr, _ := b.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	_, _ = rr.Exec(ctx, "SELECT 1")
	_, _ = pay(ctx, a, "pay-3", "cus_3", "7")
	_, err = pay(ctx, rr, "pay-3", "cus_3", "7")
	check(sqlstate(err) == "40001", "REPEATABLE READ after a concurrent commit: "+sqlstate(err))
	_ = rr.Rollback(ctx)
	retried, err := pay(ctx, b, "pay-3", "cus_3", "7")
	check(err == nil && retried["replayed"] == true, "the retried transaction replays")

	requestKeys(a, b)
	a.Close(ctx)
	b.Close(ctx)
	hammer(8, 12, 2)

	fmt.Printf("# pgx %s: %d passed, %d failed\n", mode, checks-len(failures), len(failures))
	if len(failures) > 0 {
		os.Exit(1)
	}
}

func requestKeys(a, b *pgx.Conn) {
	order := func(conn *pgx.Conn, key string, sku int) (map[string]any, error) {
		var response map[string]any
		err := conn.BeginFunc(ctx, func(tx pgx.Tx) error {
			// JSON text, not a map: the simple protocol cannot encode a map
			request, _ := json.Marshal(map[string]any{"method": "POST", "path": "/orders", "body": map[string]any{"sku": sku}})
			if err := tx.QueryRow(ctx, "SELECT idem_begin($1, $2::jsonb)", key, string(request)).Scan(&response); err != nil || response != nil {
				return err
			}
			var orderID int64
			if err := tx.QueryRow(ctx, "INSERT INTO orders(sku) VALUES ($1) RETURNING id", sku).Scan(&orderID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO ledger(order_id, amount) VALUES ($1, 9.90)", orderID); err != nil {
				return err
			}
			answer, _ := json.Marshal(map[string]any{"status": 201, "body": map[string]any{"order_id": orderID}})
			return tx.QueryRow(ctx, "SELECT idem_finish($1, $2::jsonb)", key, string(answer)).Scan(&response)
		})
		return response, err
	}
	first, err := order(a, "req-1", 7)
	check(err == nil && first["status"] == float64(201),
		fmt.Sprintf("idem_begin/idem_finish: two writes and the response stored: %v %v", first, err))
	again, err := order(b, "req-1", 7)
	check(err == nil && reflect.DeepEqual(again, first), "idem_begin on the retry returns the stored response as a map")
	var orders, ledger int
	_ = a.QueryRow(ctx, "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM ledger)").Scan(&orders, &ledger)
	check(orders == 1 && ledger == 1, "one order and one ledger row")
	_, err = order(b, "req-1", 8)
	check(sqlstate(err) == "IK001", "idem_begin with another request: IK001")
}

// Workers on their own connections retry the same keys, with SET LOCAL
// settings, until each call returns a result: one row per key must remain,
// every worker must see that row's id, and no setting may leak.
func hammer(workers, keys, rounds int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	seen := map[string]map[float64]bool{}
	var problems []string
	problem := func(p string) {
		mu.Lock()
		problems = append(problems, p)
		mu.Unlock()
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			conn := connect()
			defer conn.Close(ctx)
			for round := 0; round < rounds; round++ {
				for i := 0; i < keys; i++ {
					key := fmt.Sprintf("hammer-%d", (i+5*n+7*round)%keys)
					done := false
					for attempt := 0; attempt < 400 && !done; attempt++ {
						var result map[string]any
						err := conn.BeginFunc(ctx, func(tx pgx.Tx) error {
							var wait, tenant, lockTimeout string
							if err := tx.QueryRow(ctx, "SELECT coalesce(current_setting('idempotency.wait', true), 'on'),"+
								" coalesce(current_setting('idempotency.tenant', true), ''), current_setting('lock_timeout')").Scan(&wait, &tenant, &lockTimeout); err != nil {
								return err
							}
							if wait != "on" || tenant != "" || lockTimeout != "0" {
								problem(fmt.Sprintf("worker %d started a transaction with wait=%s tenant=%s lock_timeout=%s", n, wait, tenant, lockTimeout))
							}
							// the same tenant for all: keys shared
							if _, err := tx.Exec(ctx, "SET LOCAL idempotency.tenant = 'hammer'"); err != nil {
								return err
							}
							if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '5s'"); err != nil {
								return err
							}
							if n%2 == 1 {
								if _, err := tx.Exec(ctx, "SET LOCAL idempotency.wait = off"); err != nil {
									return err
								}
							}
							return tx.QueryRow(ctx, "SELECT idem_execute($1, $2, $3::text)",
								key, "INSERT INTO hammer(key) VALUES ($1) RETURNING id", key).Scan(&result)
						})
						switch code := sqlstate(err); code {
						case "":
							id := result["rows"].([]any)[0].(map[string]any)["id"].(float64)
							mu.Lock()
							if seen[key] == nil {
								seen[key] = map[float64]bool{}
							}
							seen[key][id] = true
							mu.Unlock()
							done = true
						case "IK002", "40001":
							time.Sleep(2 * time.Millisecond)
						default:
							problem(fmt.Sprintf("worker %d %s: %s", n, key, code))
							done = true
						}
					}
					if !done {
						problem(fmt.Sprintf("worker %d %s: no result after 400 attempts", n, key))
					}
				}
			}
		}(w)
	}
	wg.Wait()
	check(len(problems) == 0, fmt.Sprintf("%d concurrent workers: no errors and no leaked settings: %s",
		workers, strings.Join(problems[:min(3, len(problems))], "; ")))
	conn := connect()
	defer conn.Close(ctx)
	stored := map[string][]int64{}
	rows, err := conn.Query(ctx, "SELECT key, array_agg(id) FROM hammer GROUP BY key")
	if err == nil {
		for rows.Next() {
			var key string
			var ids []int64
			_ = rows.Scan(&key, &ids)
			stored[key] = ids
		}
		rows.Close()
	}
	one := len(stored) == keys
	same := true
	for key, ids := range stored {
		one = one && len(ids) == 1
		same = same && len(seen[key]) == 1 && seen[key][float64(ids[0])]
	}
	check(one, fmt.Sprintf("one effect per key (%d keys, %d workers x %d rounds)", keys, workers, rounds))
	check(same, "every worker got the stored id of each key")
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
