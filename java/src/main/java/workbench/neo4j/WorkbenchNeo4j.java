package workbench.neo4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.kernel.internal.Version;
import org.neo4j.logging.Level;
import org.neo4j.logging.log4j.Log4jLogProvider;

/**
 * Runs a Neo4j Community DBMS (Bolt, optionally HTTP + Browser) until the JVM is told to stop.
 *
 * <p>Usage: {@code java <jvm flags> -cp classes:lib/* workbench.neo4j.WorkbenchNeo4j <home-dir> <neo4j.conf>}
 *
 * <p>All Neo4j settings (listen addresses, auth, memory, logs) come from the given properties file, which
 * workbench/server.py writes before every start. Unknown or invalid settings fail the start (Neo4j's strict
 * config validation). The user log goes to stdout. Once the DBMS is up the launcher prints one line
 * {@code WORKBENCH_NEO4J_READY version=<v>}; SIGTERM/SIGINT run a shutdown hook that shuts the DBMS down
 * cleanly (checkpoint, so the next start needs no recovery) and prints {@code WORKBENCH_NEO4J_STOPPED}.
 * Exit code 1 if the DBMS cannot start, 2 on bad usage.
 */
public final class WorkbenchNeo4j {
    private WorkbenchNeo4j() {}

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 2) {
            System.err.println("usage: WorkbenchNeo4j <home-dir> <neo4j.conf>");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Path conf = Path.of(args[1]).toAbsolutePath();
        if (!Files.isRegularFile(conf)) {
            System.err.println("WorkbenchNeo4j: config file not found: " + conf);
            System.exit(2);
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
