"""URLs of the demo project."""

from django.contrib import admin
from django.urls import include, path

from bankdemo import views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/", include("bankdemo.api.urls")),
]
handler400 = views.bad_request
handler404 = views.not_found
handler500 = views.server_error
