"""The case screens (mounted under /cases/)."""

from django.urls import path

from gridgov.cases import views

app_name = "cases"

urlpatterns = [
    path("", views.case_list, name="list"),
    path("todo/", views.todo, name="todo"),
    path("todo/count/", views.todo_count, name="todo_count"),
    path("export.xlsx", views.export_xlsx, name="export_xlsx"),
    path("export.csv", views.export_csv, name="export_csv"),
    path("intake/", views.intake, name="intake"),
    path("dispatch/", views.dispatch, name="dispatch"),
    path("report/", views.report, name="report"),
    path("<str:number>/", views.case_detail, name="detail"),
    path("<str:number>/act/<str:action>/", views.case_action, name="act"),
    path("<str:number>/photos/<uuid:photo>", views.case_photo, name="photo"),
    path("<str:number>/photos/<uuid:photo>/thumb", views.case_photo_thumb, name="photo_thumb"),
]
