package workbench.neo4j;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.kernel.internal.Version;
import org.neo4j.logging.Level;
import org.neo4j.logging.log4j.Log4jLogProvider;

/**
 * Runs a Neo4j Community DBMS (Bolt, optionally HTTP + Browser) until the JVM is told to stop.
 *
 * <p>Usage: {@code java <jvm flags> -cp classes:lib/* workbench.neo4j.WorkbenchNeo4j <home-dir> <neo4j.conf>
 * [<password-file>]}
 *
 * <p>With a password file, the user {@code neo4j} gets that password before any connector opens: the DBMS
 * is first started with Bolt and HTTP off, the password set on the system database, and the DBMS shut down
 * again; only then does it start for real. A file {@code auth-applied} in the home remembers (as a SHA-256
 * digest) which password was set, so later starts skip that first step.
 *
 * <p>All Neo4j settings (listen addresses, auth, memory, logs) come from the given properties file, which
 * workbench/graphdb/server.py writes before every start. Unknown or invalid settings fail the start (Neo4j's strict
 * config validation). The user log goes to stdout. Once the DBMS is up the launcher prints one line
 * {@code WORKBENCH_NEO4J_READY version=<v>}; SIGTERM/SIGINT run a shutdown hook that shuts the DBMS down
 * cleanly (checkpoint, so the next start needs no recovery) and prints {@code WORKBENCH_NEO4J_STOPPED}.
 * Exit code 1 if the DBMS cannot start, 2 on bad usage.
 */
public final class WorkbenchNeo4j {
    private WorkbenchNeo4j() {}

    /** Give user neo4j the password in {@code passwordFile}, with no connector open meanwhile. */
    private static void applyPassword(Path home, Path conf, Path passwordFile) throws Exception {
        String password = Files.readString(passwordFile, StandardCharsets.UTF_8).strip();
        if (password.length() < 8) {
            throw new IllegalArgumentException(passwordFile + ": the password must have 8 characters or more");
        }
        Path applied = home.resolve("auth-applied");
        String digest = sha256(password);
        if (Files.isRegularFile(applied) && Files.readString(applied).strip().equals(digest)) {
            return;
        }
        System.out.println("WORKBENCH_NEO4J_SETTING_PASSWORD");
        System.out.flush();
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .loadPropertiesFromFile(conf)
                .setConfig(BoltConnector.enabled, false)
                .setConfig(HttpConnector.enabled, false)
                .setConfig(HttpsConnector.enabled, false)
                .build();
        try {
            dbms.database("system").executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
        } catch (RuntimeException e) {
            // The digest file was lost but the password is already this one: nothing to change.
            if (!String.valueOf(e.getMessage()).contains("cannot be the same")) {
                throw e;
            }
        } finally {
            dbms.shutdown();
        }
        Files.writeString(applied, digest + "\n");
    }

    private static String sha256(String text) throws NoSuchAlgorithmException {
        byte[] hash = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(hash);
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 2 && args.length != 3) {
            System.err.println("usage: WorkbenchNeo4j <home-dir> <neo4j.conf> [<password-file>]");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Path conf = Path.of(args[1]).toAbsolutePath();
        if (!Files.isRegularFile(conf)) {
            System.err.println("WorkbenchNeo4j: config file not found: " + conf);
            System.exit(2);
        }
        if (args.length == 3) {
            try {
                applyPassword(home, conf, Path.of(args[2]).toAbsolutePath());
            } catch (Throwable t) {
                System.err.println("WORKBENCH_NEO4J_FAILED cannot set the password: " + t);
                t.printStackTrace();
                System.err.flush();
                System.exit(1);
            }
        }

        System.out.println("WORKBENCH_NEO4J_STARTING version=" + Version.getNeo4jVersion() + " home=" + home);
        System.out.flush();

        Log4jLogProvider userLog = new Log4jLogProvider(System.out, Level.INFO);
        DatabaseManagementService dbms;
        try {
            dbms = new DatabaseManagementServiceBuilder(home)
                    .setUserLogProvider(userLog)
                    .loadPropertiesFromFile(conf)
                    // Shut Bolt's Netty event loops down without the default 2 s quiet period.
                    .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                    .build();
        } catch (Throwable t) {
            System.err.println("WORKBENCH_NEO4J_FAILED " + t);
            t.printStackTrace();
            System.err.flush();
            System.exit(1);
            return;
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                dbms.shutdown();
                System.out.println("WORKBENCH_NEO4J_STOPPED");
            } catch (Throwable t) {
                System.err.println("WORKBENCH_NEO4J_SHUTDOWN_FAILED " + t);
                t.printStackTrace();
            } finally {
                System.out.flush();
                System.err.flush();
                userLog.close();
                stopped.countDown();
            }
        }, "workbench-neo4j-shutdown"));

        System.out.println("WORKBENCH_NEO4J_READY version=" + Version.getNeo4jVersion());
        System.out.flush();
        // Park the main thread; the JVM exits on SIGTERM/SIGINT after the shutdown hook has run.
        stopped.await();
    }
}
