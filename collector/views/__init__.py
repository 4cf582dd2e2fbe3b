"""HTML pages of the dashboard, one module per area; collector/urls.py maps them.

Views are thin: a permission check, a form, a service call, a message and a redirect. What a page
shows about health comes from collector.status; HTML fragments built in Python live in
collector.templatetags.collector_tags.
"""
