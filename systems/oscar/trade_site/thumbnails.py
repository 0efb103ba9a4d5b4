"""Oscar's thumbnailer for a store without a thumbnail library: neither sorl-thumbnail nor
easy-thumbnails is installed (not needed by the API), but Oscar asks its thumbnailer to
remove an image's thumbnails whenever a product image is deleted (catalogue/receivers.py),
which with the default (sorl) fails, so deleting an image or a product with images would
answer 500. No thumbnails are ever made here, so there are none to delete."""

from oscar.core.thumbnails import AbstractThumbnailer


class NoThumbnails(AbstractThumbnailer):
    def generate_thumbnail(self, source, **opts):
        return source  # the original, unscaled

    def delete_thumbnails(self, source):
        return None
