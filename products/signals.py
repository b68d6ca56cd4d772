"""Signals of the products app for writes that send no post_save (bulk paths).

`products_created(sender=DataProduct, products=[...])`: many new products were written with
`products_create_many` (a restore). Other apps' hooks that react to a product's post_save
connect to this too.
"""

from django.dispatch import Signal

products_created = Signal()
