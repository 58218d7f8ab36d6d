"""URLs of the demo project."""

from django.contrib import admin
from django.urls import include, path

from bankdemo import views
from bankdemo.staff import StaffLoginForm

admin.site.login_form = StaffLoginForm  # says when an account has no admin access

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/", include("bankdemo.api.urls")),
]
handler400 = views.bad_request
handler404 = views.not_found
handler500 = views.server_error
