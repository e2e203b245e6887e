"""The graph's service and the real Placement compared over HTTP (issue 13).

``workbench bench-http`` (:mod:`.bench`) times ``GET /allocation_candidates`` against both services
served alike; ``workbench claim-load`` (:mod:`.claims`) makes concurrent boots, Nova's way, against each
and then checks that nothing was overcommitted or lost (:mod:`.checks`). Both start their services with
:mod:`.stack`; :mod:`.report` writes their JSON and Markdown.

Nothing is imported here: the claim clients are spawned processes that import only :mod:`.boots`.
"""
