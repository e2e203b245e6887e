"""Placement 16.0.0's REST API (microversions 1.0-1.39), served from the graph.

  app           make_conf() and make_app(conf, graph): the WSGI application and its middleware
  microversion  the versions, the ``version_handler`` decorator (404 below a handler's version)
  auth          noauth2 (tokens ``admin`` or ``user:project``) and the request context
  policy        oslo.policy with Placement's own default rules
  errors        Placement's JSON error body, the ``wsgify`` decorator every handler wears
  request       the request handlers get: ``req.context``, ``req.graph``, ``req.version``
  util          JSON bodies and query strings checked against Placement's schemas, responses
  routes        the 19 routes, 405 with ``Allow``, handlers imported lazily
  handlers/     one function per (route, method); see its docstring for the pattern
  serve         ``workbench serve``: gunicorn in front of make_app

The HTTP layer is thin: it parses, authorises and formats; what a request
does to the graph lives in :mod:`workbench.engine`.
"""
