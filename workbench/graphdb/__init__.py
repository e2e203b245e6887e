"""Neo4j: the local server the workbench runs (:mod:`.server`) and the connection to any Neo4j 5 (:mod:`.db`)."""
