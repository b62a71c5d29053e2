// idempotency from JDBC (Debian's libpostgresql-jdbc-java, Jackson for the
// JSON): the README's snippets, run against a server.
//
// Usage: java Client direct|pooler   (PGHOST, PGPORT, PGDATABASE, PGUSER give
// the server; TCP only, pgjdbc has no unix sockets of its own).  "pooler"
// connects with the settings the README recommends behind PgBouncer in
// transaction mode.
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.postgresql.util.PGobject;

public class Client {
    static final ObjectMapper JSON = new ObjectMapper();
    static String mode;
    static int checks = 0;
    static final List<String> failures = new ArrayList<>();

    static void check(boolean ok, String what) {
        checks++;
        System.out.println((ok ? "ok " : "not ok ") + checks + " - jdbc " + mode + ": " + what);
        if (!ok) failures.add(what);
    }

    static Connection connect() throws SQLException {
        String url = "jdbc:postgresql://" + System.getenv("PGHOST") + ":" + System.getenv("PGPORT")
            + "/" + System.getenv("PGDATABASE") + "?user=" + System.getenv("PGUSER");
        if (mode.equals("pooler")) {
            // README:jdbc-pooler
            url += "&prepareThreshold=0";   // never switch to named server-side prepared statements
            // README:end
        }
        return DriverManager.getConnection(url);
    }

    // README:jdbc
    static Map<String, Object> pay(Connection conn, String key, String customer, BigDecimal amount)
            throws SQLException, JsonProcessingException {
        try (PreparedStatement ps = conn.prepareStatement("SELECT idem_execute(?, ?, ?::text, ?::numeric)")) {
            ps.setString(1, key);
            ps.setString(2, "INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id");
            ps.setString(3, customer);
            ps.setBigDecimal(4, amount);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                PGobject jsonb = (PGobject) rs.getObject(1);    // getType() "jsonb", getValue() the JSON text
                return JSON.readValue(jsonb.getValue(), new TypeReference<Map<String, Object>>() {});
            }
        }
    }

    static int httpStatus(Connection conn, String key, String customer, BigDecimal amount) throws Exception {
        try {
            pay(conn, key, customer, amount);
            return 200;
        } catch (SQLException e) {
            switch (e.getSQLState()) {
                case "IK001": return 422;   // the key was used with a different request
                case "IK002": return 409;   // in flight elsewhere, with idempotency.wait = off
                default: throw e;           // "40001": retry the transaction, it replays
            }
        }
    }
    // README:end

    static String sqlstate(Callable fn) {
        try {
            fn.call();
        } catch (SQLException e) {
            return e.getSQLState();
        } catch (Exception e) {
            return e.toString();
        }
        return null;
    }

    interface Callable {
        void call() throws Exception;
    }

    static Object scalar(Connection conn, String sql) throws SQLException {
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getObject(1);
        }
    }

    static void exec(Connection conn, String sql) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.execute(sql);
        }
    }

    public static void main(String[] args) throws Exception {
        mode = args[0];
        try {
            run();
        } catch (Exception e) {
            check(false, "unexpected error: " + e);
        }
        System.out.println("# jdbc " + mode + ": " + (checks - failures.size()) + " passed, " + failures.size() + " failed");
        System.exit(failures.isEmpty() ? 0 : 1);
    }

    static void run() throws Exception {
        Connection a = connect(), b = connect();

        Map<String, Object> first = pay(a, "pay-1", "cus_1", new BigDecimal("100.00"));
        List<?> rows = (List<?>) first.get("rows");
        check(Boolean.FALSE.equals(first.get("replayed")) && "INSERT".equals(first.get("command"))
              && ((Map<?, ?>) rows.get(0)).get("id") instanceof Number,
              "new key runs, PGobject decoded to a Map: " + first);
        Map<String, Object> again = pay(b, "pay-1", "cus_1", new BigDecimal("100.00"));
        check(Boolean.TRUE.equals(again.get("replayed")) && again.get("rows").equals(first.get("rows")),
              "the retry from another connection replays the stored rows");
        check(((Number) scalar(a, "SELECT count(*) FROM payments")).intValue() == 1, "one payment row");
        check(httpStatus(a, "pay-1", "cus_1", new BigDecimal("999.00")) == 422, "same key, other amount: IK001 (422)");

        // IK002: a holds the key uncommitted; b does not wait
        a.setAutoCommit(false);
        check(Boolean.FALSE.equals(pay(a, "pay-2", "cus_2", new BigDecimal("5")).get("replayed")), "holder runs pay-2");
        b.setAutoCommit(false);
        exec(b, "SET LOCAL idempotency.wait = off");
        check(httpStatus(b, "pay-2", "cus_2", new BigDecimal("5")) == 409,
              "SET LOCAL idempotency.wait = off: IK002 (409) while held");
        b.rollback();
        exec(b, "SET LOCAL lock_timeout = '100ms'");
        check("55P03".equals(sqlstate(() -> pay(b, "pay-2", "cus_2", new BigDecimal("5")))),
              "SET LOCAL lock_timeout = '100ms': 55P03 while held");
        b.rollback();
        a.rollback();
        a.setAutoCommit(true);
        check("on".equals(scalar(b, "SHOW idempotency.wait")), "SET LOCAL ended with its transaction");
        b.rollback();

        // 40001: b's REPEATABLE READ snapshot predates a's commit of the key
        b.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
        scalar(b, "SELECT 1");
        pay(a, "pay-3", "cus_3", new BigDecimal("7"));
        String state = sqlstate(() -> pay(b, "pay-3", "cus_3", new BigDecimal("7")));
        check("40001".equals(state), "REPEATABLE READ after a concurrent commit: " + state);
        b.rollback();
        b.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
        b.setAutoCommit(true);
        check(Boolean.TRUE.equals(pay(b, "pay-3", "cus_3", new BigDecimal("7")).get("replayed")),
              "the retried transaction replays");

        requestKeys(a, b);
        a.close();
        b.close();
        hammer(8, 12, 2);
    }

    static Map<String, Object> order(Connection conn, String key, int sku) throws Exception {
        conn.setAutoCommit(false);
        try {
            Map<String, Object> response = null;
            try (PreparedStatement begin = conn.prepareStatement("SELECT idem_begin(?, ?::jsonb)")) {
                begin.setString(1, key);
                begin.setString(2, JSON.writeValueAsString(Map.of("method", "POST", "path", "/orders", "body", Map.of("sku", sku))));
                try (ResultSet rs = begin.executeQuery()) {
                    rs.next();
                    PGobject stored = (PGobject) rs.getObject(1);
                    if (stored != null) {
                        response = JSON.readValue(stored.getValue(), new TypeReference<Map<String, Object>>() {});
                    }
                }
            }
            if (response == null) {
                long orderId;
                try (PreparedStatement ins = conn.prepareStatement("INSERT INTO orders(sku) VALUES (?) RETURNING id")) {
                    ins.setInt(1, sku);
                    try (ResultSet rs = ins.executeQuery()) {
                        rs.next();
                        orderId = rs.getLong(1);
                    }
                }
                try (PreparedStatement led = conn.prepareStatement("INSERT INTO ledger(order_id, amount) VALUES (?, 9.90)")) {
                    led.setLong(1, orderId);
                    led.executeUpdate();
                }
                try (PreparedStatement fin = conn.prepareStatement("SELECT idem_finish(?, ?::jsonb)")) {
                    fin.setString(1, key);
                    fin.setString(2, JSON.writeValueAsString(Map.of("status", 201, "body", Map.of("order_id", orderId))));
                    try (ResultSet rs = fin.executeQuery()) {
                        rs.next();
                        response = JSON.readValue(((PGobject) rs.getObject(1)).getValue(), new TypeReference<Map<String, Object>>() {});
                    }
                }
            }
            conn.commit();
            return response;
        } catch (Exception e) {
            conn.rollback();
            throw e;
        } finally {
            conn.setAutoCommit(true);
        }
    }

    static void requestKeys(Connection a, Connection b) throws Exception {
        Map<String, Object> first = order(a, "req-1", 7);
        check(Integer.valueOf(201).equals(first.get("status")),
              "idem_begin/idem_finish: two writes and the response stored: " + first);
        check(order(b, "req-1", 7).equals(first), "idem_begin on the retry returns the stored response as a Map");
        check(((Number) scalar(a, "SELECT (SELECT count(*) FROM orders) + 10 * (SELECT count(*) FROM ledger)")).intValue() == 11,
              "one order and one ledger row");
        check("IK001".equals(sqlstate(() -> order(b, "req-1", 8))), "idem_begin with another request: IK001");
    }

    // Workers on their own connections retry the same keys, with SET LOCAL
    // settings, until each call returns a result: one row per key must remain,
    // every worker must see that row's id, and no setting may leak.
    static void hammer(int workers, int keys, int rounds) throws Exception {
        Map<String, Set<Long>> seen = new ConcurrentHashMap<>();
        List<String> problems = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Thread> threads = new ArrayList<>();
        for (int w = 0; w < workers; w++) {
            final int n = w;
            Thread t = new Thread(() -> {
                try (Connection conn = connect()) {
                    conn.setAutoCommit(false);
                    for (int round = 0; round < rounds; round++) {
                        for (int i = 0; i < keys; i++) {
                            String key = "hammer-" + ((i + 5 * n + 7 * round) % keys);
                            boolean done = false;
                            for (int attempt = 0; attempt < 400 && !done; attempt++) {
                                try {
                                    try (Statement st = conn.createStatement();
                                         ResultSet rs = st.executeQuery("SELECT coalesce(current_setting('idempotency.wait', true), 'on'),"
                                             + " coalesce(current_setting('idempotency.tenant', true), ''), current_setting('lock_timeout')")) {
                                        rs.next();
                                        if (!rs.getString(1).equals("on") || !rs.getString(2).equals("") || !rs.getString(3).equals("0")) {
                                            problems.add("worker " + n + " started a transaction with wait=" + rs.getString(1)
                                                         + " tenant=" + rs.getString(2) + " lock_timeout=" + rs.getString(3));
                                        }
                                    }
                                    exec(conn, "SET LOCAL idempotency.tenant = 'hammer'");   // the same for all: keys shared
                                    exec(conn, "SET LOCAL lock_timeout = '5s'");
                                    if (n % 2 == 1) exec(conn, "SET LOCAL idempotency.wait = off");
                                    Map<String, Object> r;
                                    try (PreparedStatement ps = conn.prepareStatement("SELECT idem_execute(?, ?, ?::text)")) {
                                        ps.setString(1, key);
                                        ps.setString(2, "INSERT INTO hammer(key) VALUES ($1) RETURNING id");
                                        ps.setString(3, key);
                                        try (ResultSet rs = ps.executeQuery()) {
                                            rs.next();
                                            r = JSON.readValue(rs.getString(1), new TypeReference<Map<String, Object>>() {});
                                        }
                                    }
                                    conn.commit();
                                    Object id = ((Map<?, ?>) ((List<?>) r.get("rows")).get(0)).get("id");
                                    seen.computeIfAbsent(key, k -> ConcurrentHashMap.newKeySet()).add(((Number) id).longValue());
                                    done = true;
                                } catch (SQLException e) {
                                    conn.rollback();
                                    if (!"IK002".equals(e.getSQLState()) && !"40001".equals(e.getSQLState())) {
                                        problems.add("worker " + n + " " + key + ": " + e.getSQLState() + " " + e.getMessage());
                                        done = true;
                                    } else {
                                        Thread.sleep(2);
                                    }
                                }
                            }
                            if (!done) problems.add("worker " + n + " " + key + ": no result after 400 attempts");
                        }
                    }
                } catch (Exception e) {
                    problems.add("worker " + n + ": " + e);
                }
            });
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) t.join(60000);
        check(problems.isEmpty(), workers + " concurrent workers: no errors and no leaked settings: "
              + problems.subList(0, Math.min(3, problems.size())));
        boolean one = true, same = true;
        int count = 0;
        try (Connection conn = connect(); Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT key, min(id), count(*) FROM hammer GROUP BY key")) {
            while (rs.next()) {
                count++;
                one &= rs.getLong(3) == 1;
                same &= new HashSet<>(List.of(rs.getLong(2))).equals(seen.get(rs.getString(1)));
            }
        }
        check(one && count == keys, "one effect per key (" + keys + " keys, " + workers + " workers x " + rounds + " rounds)");
        check(same, "every worker got the stored id of each key");
    }
}
