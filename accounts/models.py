"""No tables of its own: roles are auth groups, two-factor devices are django_otp's.

The module exists so that Django sends this app post_migrate (it skips apps without a models module),
which keeps the roles in place after every migrate and every flush.
"""
